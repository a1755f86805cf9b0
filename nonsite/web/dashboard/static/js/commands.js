/* Commands to a data logger (数采仪) and what came of them (GET /api/v1/commands): 补遗 (the
   platform asks the logger again for an interval's data: 2051 minute, 2061 hour, 2031 day
   data), 校时 (reading its clock, 1011; setting it, 1012, when it drifted) and an operator's
   command. The case page lists a case's (rule B7's recall of its missing hour); the outlet
   page its logger's, with the 补遗 and 校时 buttons. Every time in China time. */
import { api, chinaParts, el, fmtTime } from "./core.js";
import { t, tf } from "./i18n.js";

/* Who reads the commands and who asks for 补遗 and 校时: GRANTS "commands" and
   "commands.recall" in nonsite/web/security.py (the API answers 403 to the others, so the
   pages do not ask; tests/nonsite/web/test_commands_page.py keeps these lists equal). */
export const COMMAND_READERS = ["monitor", "supervisor", "admin"];
export const COMMAND_REQUESTERS = ["monitor", "supervisor"];
export const mayReadCommands = () => COMMAND_READERS.includes(document.body.dataset.role);
export const mayRequestCommands = () => COMMAND_REQUESTERS.includes(document.body.dataset.role);

/* Sent and not finished yet: a page re-reads the list while one is. */
export const PENDING = new Set(["requested", "sent", "accepted"]);
export const RECALL_CNS = ["2051", "2061", "2031"]; // minute, hour, day data
const STATUS_CLASS = {
  done: "", no_data: "warning", no_answer: "warning", rate_limited: "warning",
  failed: "alarm", refused: "alarm", unsendable: "alarm",
};
/* Refusals the API explains in Chinese (ingest/commands/manual.py): shown as they are. */
const REFUSALS = new Set(["unknown_mn", "bad_cn", "bad_time", "rate_limited", "bad_cp", "no_reason"]);

const name = (prefix, code) => (t(`${prefix}.${code}`) !== `${prefix}.${code}` ? t(`${prefix}.${code}`) : code);

/* 补遗（小时数据）, 校时(读), 命令 3020. */
export function kindText(c) {
  if (c.kind === "recall") return `${name("cmd.kind", "recall")}（${name("cmd.cn", c.cn)}）`;
  if (c.kind === "command") return `${name("cmd.kind", "command")} ${c.cn}`;
  return name("cmd.kind", c.kind);
}

/* A recall's interval in China time: "2026-12-05 08:00 – 09:59" within a day, else both in
   full; null for the other kinds. */
export function intervalText(c) {
  const p = c.params || {};
  if (!p.BeginTime || !p.EndTime) return null;
  const [a, b] = [chinaParts(new Date(p.BeginTime)), chinaParts(new Date(p.EndTime))];
  const sameDay = a.year === b.year && a.month === b.month && a.day === b.day;
  return `${fmtTime(p.BeginTime)} – ${sameDay ? `${b.hour}:${b.minute}` : fmtTime(p.EndTime)}`;
}

export const statusBadge = (c) => el("span", { class: `badge ${STATUS_CLASS[c.status] ?? "state"}`, "data-status": c.status }, name("cmd.status", c.status));

/* What the logger gave: a recall's data packets received since it was sent (收到 N 条), the
   clock's drift it reported. */
export function resultText(c) {
  const parts = [];
  if (c.kind === "recall" && c.sent_at) parts.push(tf("cmd.filled", { n: c.filled }));
  if (c.drift_s !== null && c.drift_s !== undefined) {
    const s = Math.round(c.drift_s);
    parts.push(tf("cmd.drift", { s: s > 0 ? `+${s}` : String(s) }));
  }
  return parts.join("；") || "—";
}

/* A person by the name they asked under; the platform itself (auto:B7, auto:clock) as 平台自动. */
export const requesterText = (c) => (c.requested_by.startsWith("auto:") ? t("cmd.auto") : c.requested_by);

const HEADS = ["cmd.col.kind", "cmd.col.interval", "cmd.col.status", "cmd.col.result", "cmd.col.by", "cmd.col.at"];

/* The commands as a table (one card per command on a phone), newest first. */
export function commandTable(list, id) {
  const heads = HEADS.map((k) => t(k));
  const cell = (i, content, cls) => el("td", { class: cls || null, "data-label": heads[i] }, content);
  return el("table", { class: "cases stack commands", id },
    el("thead", {}, el("tr", {}, ...heads.map((h, i) => el("th", { class: i === 5 ? "num" : null }, h)))),
    el("tbody", {}, ...list.map((c) => el("tr", { "data-command": c.id, "data-status": c.status },
      cell(0, [kindText(c), c.reason ? el("div", { class: "note" }, c.reason) : ""]),
      cell(1, intervalText(c) || "—", "num"),
      cell(2, [statusBadge(c), c.detail ? el("div", { class: "note" }, c.detail) : ""]),
      cell(3, resultText(c), "num"),
      cell(4, requesterText(c)),
      cell(5, fmtTime(c.requested_at), "num")))));
}

/* One command as a sentence, for the page that just asked for it:
   "已申请 #12：补遗（小时数据） 2026-12-05 08:00 – 09:59，待发送". */
export function describe(c) {
  const interval = intervalText(c);
  return `${t("cmd.made")} #${c.id}：${kindText(c)}${interval ? ` ${interval}` : ""}，${name("cmd.status", c.status)}`;
}

/* A refusal as the user reads it: the API's own Chinese reason when it gives one. */
export function refusalText(err) {
  if (err && REFUSALS.has(err.code) && err.message) return err.message;
  if (err && err.status === 403) return t("cmd.not_allowed");
  if (err && err.code === "invalid_request") return t("cmd.invalid");
  return t("err.generic");
}

export const listCommands = (query) => api("GET", `/api/v1/commands?${new URLSearchParams(query)}`);
