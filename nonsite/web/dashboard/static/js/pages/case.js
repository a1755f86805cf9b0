/* One case, designed for a phone first: what it measures against what, who handles it, the
   actions within a thumb's reach, then the chart, the evidence, the commands to the logger
   made for it (补遗与命令, for the roles that read them) and the audit trail. */
import { drawChart } from "../chart.js";
import { PENDING, commandTable, listCommands, mayReadCommands } from "../commands.js";
import { api, brigadeName, el, fmtTime, isOverdue, loadBrigades, refresh, stateBadge, tierBadge } from "../core.js";
import { t } from "../i18n.js";
import { attachmentList, uploadForm } from "../evidence.js";
import { caseDecisions } from "../decisions.js";
import { followUp } from "../follow_up.js";
import { actionPanel, fmtQty, ruleText, sourceText } from "../widgets.js";

let shown = ""; // the case version and language on screen: other cases' events change nothing

export default async function render() {
  const id = document.getElementById("case").dataset.caseId;
  const [detail, brigades] = await Promise.all([api("GET", `/api/v1/cases/${id}`), loadBrigades(), caseCommands(id)]);
  const c = detail.case;
  const key = `${c.id}:${c.version}:${document.documentElement.lang}`;
  if (key === shown) return; // keeps a half-written form as it is
  shown = key;
  document.getElementById("case-head").replaceChildren(
    el("h2", {}, `#${c.id} ${c.enterprise_name}`),
    el("div", { class: "case-meta" },
      sourceView(detail),
      el("span", {}, ruleText(c)), tierBadge(c.tier), stateBadge(c.state),
      c.condition === "cleared" ? el("span", { class: "note" }, t("case.condition_cleared")) : ""),
    quantityView(c),
    el("div", { id: "case-assignee", class: c.assignee ? "assignee" : "assignee none" },
      `${t("case.assignee")}：`, el("b", {}, c.assignee || t("case.unassigned"))),
  );
  document.getElementById("actions").replaceChildren(...actionPanel(detail, () => refresh(), { brigades }));
  await caseEvidence(c);
  await caseDecisions(c, () => refresh());
  await followUp(c, () => refresh());
  document.getElementById("evidence").replaceChildren(...evidenceRows(detail, brigades).map(([k, v, cls]) =>
    el("tr", {}, el("td", {}, t(k)), el("td", { class: cls || null }, v))));
  document.getElementById("audit").replaceChildren(...detail.events.map((e) => el("li", {},
    el("span", { class: "when" }, fmtTime(e.at)),
    el("b", {}, e.actor), ` (${t(`role.${e.role}`)}) `, el("span", { class: "action", "data-action": e.action }, t(`action.${e.action}`)),
    e.to_state && e.to_state !== e.from_state ? ` → ${t(`state.${e.to_state}`)}` : "",
    e.action === "acknowledge" && e.refs && e.refs.from ? `（${t("case.taken_from")} ${e.refs.from}）` : "",
    e.note ? el("div", { class: "note" }, e.note) : "")));
  // The case's record (its audit trail in China time): JSON, and CSV for a spreadsheet.
  const exp = document.getElementById("export-json");
  exp.href = `/api/v1/cases/${c.id}/record`;
  exp.download = `case-${c.id}.json`;
  const csv = document.getElementById("export-csv") || el("a", { id: "export-csv" });
  csv.href = `/api/v1/cases/${c.id}/record?format=csv`;
  csv.download = `case-${c.id}.csv`;
  csv.textContent = t("case.export_csv");
  if (!csv.isConnected) exp.after(" · ", csv);
  // A clue's case and a 双随机 inspection have no series of their own (a clue's data are
  // recorded with it; an inspection is a visit).
  const noSeries = c.kind === "clue" || c.kind === "inspection";
  document.querySelector(".case-chart").hidden = noSeries;
  if (!noSeries) await drawChart(detail);
}

/* 现场证据 and 线索: the case's files (a brigade's officer uploads from the phone's camera), the
   bundle for a court or the police (证据包), and the clues merged into the case. */
const ATTACHERS = new Set(["monitor", "supervisor", "enforcer", "enterprise"]);
const BUNDLERS = new Set(["monitor", "supervisor", "enforcer"]);
const CLUE_READERS = new Set(["monitor", "supervisor", "enforcer", "admin"]);

async function caseEvidence(c) {
  const { role, brigade } = document.body.dataset;
  const showFiles = async () => {
    const items = await api("GET", `/api/v1/cases/${c.id}/attachments`);
    document.getElementById("attachments").replaceChildren(...attachmentList(items));
  };
  await showFiles();
  const mayAttach = ATTACHERS.has(role) && (role !== "enforcer" || c.brigade === brigade);
  const upload = document.getElementById("upload");
  if (mayAttach && !document.getElementById("ev-form")) {
    upload.replaceChildren(uploadForm(`/api/v1/cases/${c.id}/attachments`, showFiles));
  }
  const bundle = document.getElementById("bundle");
  bundle.hidden = !(BUNDLERS.has(role) && (role !== "enforcer" || c.brigade === brigade));
  bundle.href = `/api/v1/cases/${c.id}/bundle`;
  bundle.download = `证据包-案件${c.id}.zip`;
  if (CLUE_READERS.has(role)) {
    const clues = await api("GET", `/api/v1/cases/${c.id}/clues`);
    document.getElementById("clues").hidden = !clues.length;
    document.getElementById("case-clues").replaceChildren(...clues.map((x) => el("div", { class: "clue-line", id: `case-clue-${x.id}` },
      el("b", {}, `${t(`clue.source.${x.source}`)} · ${fmtTime(x.occurred_at)}`), " ", x.description,
      el("span", { class: "meta" }, ` （${x.submitted_by}）`))));
  }
}

/* 补遗与命令: the commands to the logger made for the case (rule B7 recalls its missing hour),
   each with its interval, status and what came back; re-read while one is under way (the
   logger answers within minutes, and no case event says so). Not there for the roles that
   may not read commands, nor for a case without any. */
const COMMANDS_EVERY_MS = 5e3;
let commandsTimer = null;

async function caseCommands(id) {
  if (!mayReadCommands()) return;
  clearTimeout(commandsTimer);
  let section = document.getElementById("case-commands");
  if (!section) {
    section = el("section", { class: "panel case-commands", id: "case-commands", hidden: true });
    section.style.order = "5"; // on a phone: after the evidence, before the audit trail
    document.querySelector(".case-audit").before(section);
  }
  let list = null;
  let failed = null;
  try {
    list = await listCommands({ case_id: id, limit: 100 });
  } catch (err) {
    failed = err;
  }
  if (failed && failed.status === 403) { section.hidden = true; return; }
  section.hidden = !failed && !list.length;
  section.replaceChildren(el("h3", {}, t("cmd.section")), failed
    ? el("p", { class: "empty" }, `${t("ops.read_failed")}：${failed.message}`)
    : commandTable(list, "case-commands-table"));
  clearTimeout(commandsTimer); // one timer, however many reads overlapped
  if (list && list.some((c) => PENDING.has(c.status))) commandsTimer = setTimeout(() => caseCommands(id), COMMANDS_EVERY_MS);
}

/* The case's outlet or meter; an outlet links to its page (its factors, limits and hours). */
function sourceView(detail) {
  const c = detail.case;
  const name = sourceText(c);
  return el("span", { id: "case-source" }, detail.source_kind === "outlet"
    ? el("a", { href: `/enterprises/${encodeURIComponent(c.enterprise_id)}/outlets/${encodeURIComponent(c.source_id)}` }, name)
    : name);
}

/* The rule family's own quantity against its own threshold; the multiple for exceedances. */
function quantityView(c) {
  const q = c.quantity;
  return el("div", { id: "case-quantity", class: "quantity" },
    el("span", { class: "q-name" }, q.name),
    el("span", { class: "q-value" }, fmtQty(q.value, q.unit)),
    q.ongoing ? el("span", { class: "q-ongoing" }, t("case.ongoing")) : "",
    q.limit !== null ? el("span", { class: "q-limit" }, `${q.limit_name} ${fmtQty(q.limit, q.unit)}`) : "",
    q.exceedance && c.peak_multiple !== null ? el("span", { class: "q-multiple" }, `${t("case.peak")} ${c.peak_multiple}`) : "");
}

function evidenceRows(detail, brigades) {
  const c = detail.case;
  const wo = detail.work_order;
  const rows = [
    ...(c.factor_name ? [["case.factor", c.factor_name]] : []),
    ["case.first_seen", fmtTime(c.first_seen)], ["case.last_seen", fmtTime(c.last_seen)],
    ["case.count", c.count],
  ];
  if (c.quantity.exceedance) rows.push(["case.peak", c.peak_multiple ?? "—"]);
  const optional = [
    ["case.brigade", c.brigade && brigadeName(c.brigade, brigades)], ["case.explain_due", c.explain_due && fmtTime(c.explain_due)],
    ["case.feedback_due", c.feedback_due && fmtTime(c.feedback_due), isOverdue(c.feedback_due) && ["dispatched", "on_site"].includes(c.state) ? "overdue" : ""],
    ["case.work_order", wo && `${t(`kind.${wo.kind}`)} · ${t(`wo.${wo.state}`)}`],
    ["case.recheck", c.recheck_until && fmtTime(c.recheck_until)],
    ["case.recurrence", c.recurrence || null], ["case.escalation", c.escalation],
  ];
  return [...rows, ...optional.filter(([, v]) => v !== null && v !== undefined && v !== "")];
}
