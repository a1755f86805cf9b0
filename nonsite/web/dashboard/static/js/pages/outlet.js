/* An outlet's page: its factors and limits, its latest values, and its hour values (as the
   rules judged them: valid or not, flags, marked periods) over a chosen range — the last 24
   hours, the last 7 days or any range up to a year typed in China time (the values the rules
   kept as each hour closed). The chart and every
   time are China time, whatever the browser's zone. Reached from a fleet card, a case's
   source and 本企业. For the monitoring centre and the supervisors, its logger's commands:
   补遗 (recall an interval's data) and 校时 (its clock), and the latest commands with their
   outcomes (the admin reads the list; the others see neither). */
import { PENDING, RECALL_CNS, commandTable, describe, listCommands, mayReadCommands, mayRequestCommands, refusalText } from "../commands.js";
import { api, chinaLocal, chinaTimeAxis, el, fmtNum, fmtTime, parseChinaTime, refresh, timeField } from "../core.js";
import { lang, t } from "../i18n.js";
import { chinaTimeInput } from "../widgets.js";

const HOUR_MS = 3600e3;
const LIVE_EVERY_MS = 60e3; // a live event re-reads the series at most this often
let range = { kind: "24h" };
let factor = null;
let dirty = true; // the user changed something: read again now
let lastRead = 0;
let chart = null;

function span() {
  const hour0 = Math.floor(Date.now() / HOUR_MS) * HOUR_MS; // China hours are whole UTC hours
  if (range.kind === "24h") return [hour0 - 23 * HOUR_MS, hour0 + HOUR_MS];
  if (range.kind === "7d") return [hour0 - 167 * HOUR_MS, hour0 + HOUR_MS];
  return [range.since, range.until];
}

const valueOf = (p) => (p && p.valid ? p.value : null);
const flagText = (p) => (p.flag ? t(`flag.${p.flag}`) : t("flag.missing"));

// The newest range asked for: a slower answer to an earlier one (a year, then 近24小时 clicked)
// is dropped, not drawn over the later one's.
let asked = 0;

export default async function render() {
  const host = document.getElementById("outlet");
  const { enterprise: eid, outlet: oid } = host.dataset;
  bindPicker();
  if (loggerMn) await loggerCommands(loggerMn); // a live refresh, the language switched
  if (!dirty && Date.now() - lastRead < LIVE_EVERY_MS) return;
  dirty = false;
  lastRead = Date.now();
  const [since, until] = span();
  const q = new URLSearchParams({ since: new Date(since).toISOString(), until: new Date(until).toISOString(), raw: "false" });
  const question = ++asked;
  let ent; let s;
  try {
    [ent, s] = await Promise.all([
      api("GET", `/api/v1/enterprises/${encodeURIComponent(eid)}`),
      api("GET", `/api/v1/enterprises/${encodeURIComponent(eid)}/outlets/${encodeURIComponent(oid)}/series?${q}`)]);
    if (question !== asked) return;
  } catch (err) {
    if (question !== asked) return;
    document.getElementById("outlet-head").replaceChildren(el("h2", {}, err.status === 404 ? t("outlet.not_found") : `${t("ops.read_failed")}：${err.message}`));
    host.querySelectorAll("section.panel").forEach((p) => { p.hidden = true; });
    return;
  }
  const mine = (ent.outlets || []).find((o) => o.id === oid);
  if (!loggerMn) {
    loggerMn = (mine && mine.mn) || s.mn;
    await loggerCommands(loggerMn);
  }
  document.getElementById("range-text").textContent = `${fmtTime(s.since)} – ${fmtTime(s.until)}（${t("ops.china_time")}）`;
  head(ent, s);
  factors(s);
  const codes = s.factors.map((f) => f.code);
  if (!factor || !codes.includes(factor)) factor = (s.factors.find((f) => f.configured) || s.factors[0] || {}).code || null;
  const select = document.getElementById("factor-select");
  select.replaceChildren(...s.factors.map((f) => el("option", { value: f.code, selected: f.code === factor }, f.name)));
  select.onchange = () => { factor = select.value; dirty = true; refresh(); };
  hours(s, since, until);
  draw(s, since, until);
  const marked = s.marked.map((m) => `${fmtTime(m.start)} – ${fmtTime(m.end)} ${t(`mark.${m.type}`)}${m.reason ? `（${m.reason}）` : ""}`);
  document.getElementById("outlet-marked").textContent = marked.length ? `${t("outlet.marked")}：${marked.join("；")}` : "";
}

/* ---------- the logger's commands: 补遗, 校时 and the latest commands ---------- */
const COMMANDS_SHOWN = 10;
const COMMANDS_EVERY_MS = 5e3; // re-read while a command is under way
let loggerMn = null;
let panelKey = "";
let commandsTimer = null;

async function loggerCommands(mn) {
  if (!mayReadCommands()) return;
  const key = `${mn}:${lang()}`;
  if (key !== panelKey) {
    panelKey = key;
    const old = document.getElementById("logger-commands");
    const panel = commandsPanel(mn);
    if (old) old.replaceWith(panel);
    else document.getElementById("outlet-head").after(panel);
  }
  await readCommands(mn);
}

function commandsPanel(mn) {
  const head = el("div", { class: "panel-head" }, el("h3", {}, t("cmd.outlet_title")), el("span", { class: "note" }, `${t("cmd.logger")} ${mn}`));
  const result = el("p", { id: "command-result", class: "command-result", role: "status", hidden: true });
  const children = [head];
  if (mayRequestCommands()) {
    const form = recallForm(mn, result);
    const open = el("button", { type: "button", id: "open-recall", "aria-controls": "recall-form", "aria-expanded": "false",
      onclick: () => showForm(form, open, form.parentNode.hidden) }, t("cmd.recall"));
    const check = el("button", { type: "button", id: "time-check" }, t("cmd.time_check"));
    check.onclick = async () => {
      check.disabled = true;
      try {
        say(result, describe(await api("POST", `/api/v1/loggers/${encodeURIComponent(mn)}/time-check`)), false);
        await readCommands(mn);
      } catch (err) {
        say(result, refusalText(err), true);
      } finally {
        check.disabled = false;
      }
    };
    head.append(el("div", { class: "action-bar" }, open, check));
    children.push(el("div", { id: "recall-box", hidden: true }, form)); // a flex form ignores its own hidden
    form.addEventListener("reset", () => { showForm(form, open, false); form.querySelector(".error").textContent = ""; });
  }
  children.push(result, el("div", { id: "commands-list" }));
  return el("section", { class: "panel logger-commands", id: "logger-commands" }, ...children);
}

function say(node, text, error) {
  node.textContent = text;
  node.hidden = !text;
  node.classList.toggle("error", error);
}

/* Opens the form with the range on screen as its interval (China time, to the minute). */
function showForm(form, button, on) {
  form.parentNode.hidden = !on;
  button.setAttribute("aria-expanded", String(on));
  if (!on) return;
  const [since, until] = span();
  const begin = form.querySelector("[name=begin]");
  const end = form.querySelector("[name=end]");
  if (!begin.value) begin.value = fmtTime(since);
  if (!end.value) end.value = fmtTime(Math.min(until, Math.floor(Date.now() / HOUR_MS) * HOUR_MS));
}

/* 补遗: the interval typed in China time (as every time field of the site), the data kind
   (2051 minute, 2061 hour, 2031 day data), the reason (for the audit). The API decides (an
   interval backwards or over 31 days, the logger's hourly limit) and says why, in Chinese. */
function recallForm(mn, result) {
  const form = el("form", { class: "action labelled", id: "recall-form" });
  const field = (id, label, control, cls) => el("div", { class: `field${cls ? ` ${cls}` : ""}` }, el("label", { for: id }, label), control);
  const times = [timeField("recall-begin", "begin", t("cmd.begin")), timeField("recall-end", "end", t("cmd.end"))];
  times.forEach((f) => chinaTimeInput(f.querySelector("input")));
  const error = el("span", { class: "error", role: "alert", id: "recall-error" });
  const submit = el("button", { type: "submit", class: "primary", id: "recall-submit" }, t("cmd.submit"));
  form.append(
    el("h4", { class: "field wide" }, t("cmd.recall_title")),
    ...times,
    field("recall-cn", t("cmd.data_kind"), el("select", { id: "recall-cn", name: "cn" },
      ...RECALL_CNS.map((cn) => el("option", { value: cn, selected: cn === "2061" }, t(`cmd.cn.${cn}`))))),
    field("recall-reason", t("cmd.reason"), el("input", { id: "recall-reason", name: "reason", maxlength: 500, autocomplete: "off", placeholder: t("cmd.reason_hint") }), "wide"),
    el("div", { class: "buttons" }, submit, el("button", { type: "reset", class: "cancel" }, t("act.cancel"))),
    error);
  form.addEventListener("invalid", (ev) => { if (ev.target.validationMessage) error.textContent = ev.target.validationMessage; }, true);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const [begin, end] = [parseChinaTime(f.get("begin")), parseChinaTime(f.get("end"))];
    if (!begin || !end) { error.textContent = t("time.bad"); return; }
    error.textContent = "";
    submit.disabled = true; // one tap, one request
    try {
      const body = { cn: f.get("cn"), begin: `${chinaLocal(begin)}:00+08:00`, end: `${chinaLocal(end)}:00+08:00`, reason: f.get("reason").trim() };
      const made = await api("POST", `/api/v1/loggers/${encodeURIComponent(mn)}/recall`, body);
      say(result, describe(made), false);
      form.reset();
      await readCommands(mn);
    } catch (err) {
      error.textContent = refusalText(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

async function readCommands(mn) {
  clearTimeout(commandsTimer);
  const host = document.getElementById("commands-list");
  if (!host) return;
  let list;
  try {
    list = await listCommands({ mn, limit: COMMANDS_SHOWN });
  } catch (err) {
    host.replaceChildren(el("p", { class: "empty", id: "commands-none" }, err.status === 403 ? t("ops.no_permission") : `${t("ops.read_failed")}：${err.message}`));
    return;
  }
  host.replaceChildren(...(list.length
    ? [el("p", { class: "note", id: "commands-hint" }, t("cmd.latest")), commandTable(list, "commands")]
    : [el("p", { class: "empty", id: "commands-none" }, t("cmd.none"))]));
  clearTimeout(commandsTimer);
  if (list.some((c) => PENDING.has(c.status))) commandsTimer = setTimeout(() => readCommands(mn), COMMANDS_EVERY_MS);
}

function bindPicker() {
  document.querySelectorAll(".range-picker .segmented button").forEach((b) => {
    b.setAttribute("aria-pressed", String(b.dataset.range === range.kind));
    b.onclick = () => { range = { kind: b.dataset.range }; dirty = true; refresh(); };
  });
  const form = document.getElementById("range-form");
  const sinceInput = document.getElementById("range-since");
  const untilInput = document.getElementById("range-until");
  if (!sinceInput.value) {
    const [since, until] = span();
    sinceInput.value = fmtTime(since);
    untilInput.value = fmtTime(until);
  }
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const error = document.getElementById("range-error");
    const [a, b] = [parseChinaTime(sinceInput.value), parseChinaTime(untilInput.value)];
    if (!a || !b) { error.textContent = t("time.bad"); return; }
    const since = new Date(a).getTime();
    const until = new Date(b).getTime();
    if (!(until > since) || until - since > 366 * 24 * HOUR_MS) { error.textContent = t("range.bad"); return; }
    error.textContent = "";
    range = { kind: "custom", since, until };
    dirty = true;
    refresh();
  };
}

function head(ent, s) {
  const latest = Object.values(s.latest).map((p) => p.t).sort().pop();
  document.getElementById("outlet-head").replaceChildren(
    el("h2", {}, `${ent.name} · ${s.outlet_name || s.outlet_id}`),
    el("span", {}, `${t(`outlet.kind.${s.kind}`)}（${s.outlet_id}）`),
    el("span", {}, `MN ${s.mn}`),
    latest ? el("span", { class: "note" }, `${t("outlet.latest")} ${fmtTime(latest)}`) : "",
  );
}

function factors(s) {
  const table = document.getElementById("factors");
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  const cell = (i, content, cls) => el("td", { class: cls || null, "data-label": heads[i] }, content);
  table.querySelector("tbody").replaceChildren(...s.factors.map((f) => {
    const lim = s.limits[f.code] || {};
    const last = s.latest[f.code];
    return el("tr", { "data-factor": f.code },
      cell(0, f.name, null), cell(1, f.unit || "—"),
      cell(2, f.configured ? fmtNum(lim.hour_alarm) : t("outlet.not_judged"), "num"),
      cell(3, fmtNum(lim.day_alarm), "num"),
      cell(4, lim.reference_o2 === null || lim.reference_o2 === undefined ? "—" : `${fmtNum(lim.reference_o2)}%`, "num"),
      cell(5, last ? [fmtNum(last.value), " ", el("span", { class: "note" }, `${t(`flag.${last.flag || "N"}`)} ${fmtTime(last.t)}`)] : "—", "num"));
  }));
}

function hourPoints(s) {
  return new Map(((s.hourly || {})[factor] || []).map((p) => [new Date(p.t).getTime(), p]));
}

function hours(s, since, until) {
  const table = document.getElementById("hours");
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  const lim = (s.limits[factor] || {}).hour_alarm;
  const points = hourPoints(s);
  const rows = [];
  for (let h = Math.ceil(until / HOUR_MS) * HOUR_MS - HOUR_MS; h >= Math.floor(since / HOUR_MS) * HOUR_MS; h -= HOUR_MS) {
    const p = points.get(h);
    const cell = (i, content, cls) => el("td", { class: cls || null, "data-label": heads[i] }, content);
    const judged = p && p.converted !== null && p.converted !== undefined ? p.converted : valueOf(p);
    const over = lim !== null && lim !== undefined && judged !== null && judged > lim;
    rows.push(el("tr", { class: [p ? "" : "missing", over ? "over" : ""].join(" ").trim() || null },
      cell(0, fmtTime(h), "num"),
      cell(1, p ? fmtNum(valueOf(p)) : t("outlet.no_data"), "num"),
      cell(2, p ? fmtNum(p.converted) : "—", "num opt"),
      cell(3, p ? (p.valid ? t("outlet.yes") : t("outlet.no")) : "—"),
      cell(4, p ? [flagText(p), p.marked ? el("span", { class: "note" }, ` ${t("outlet.marked")}`) : ""] : "—"),
      cell(5, p ? p.valid_minutes : "—", "num opt"),
      cell(6, p ? p.n : 0, "num opt")));
  }
  table.querySelector("tbody").replaceChildren(...rows);
}

function draw(s, since, until) {
  const host = document.getElementById("outlet-chart");
  if (chart) { chart.destroy(); chart = null; }
  host.replaceChildren();
  const points = [...hourPoints(s).values()];
  if (!window.uPlot || !points.length) {
    host.append(el("p", { class: "empty" }, t("chart.no_data") !== "chart.no_data" ? t("chart.no_data") : t("outlet.no_data")));
    return;
  }
  const converted = points.some((p) => p.converted !== null && p.converted !== undefined);
  const xs = points.map((p) => new Date(p.t).getTime() / 1000);
  const ys = points.map((p) => (converted ? p.converted : valueOf(p)));
  const lim = (s.limits[factor] || {}).hour_alarm;
  const info = s.factors.find((f) => f.code === factor) || {};
  const axis = chinaTimeAxis(t("case.time"));
  const series = [axis.xSeries, { label: `${info.name || factor}${converted ? t("outlet.converted") : ""}`, stroke: "#0b5394", width: 1.5,
    value: (u, v) => fmtNum(v, info.unit), points: { show: true, size: 4 }, spanGaps: false }];
  const data = [xs, ys];
  if (lim !== null && lim !== undefined) {
    series.push({ label: t("outlet.hour_limit"), stroke: "#c62828", width: 2, dash: [6, 4], points: { show: false }, value: (u, v) => fmtNum(v, info.unit) });
    data.push(xs.map(() => lim));
  }
  chart = new window.uPlot({
    width: host.clientWidth || 320, height: host.clientWidth < 560 ? 220 : 280,
    tzDate: axis.tzDate, series, axes: [axis.xAxis, { label: info.unit || "", size: 56 }],
    scales: { x: { range: () => [since / 1000, until / 1000] } },
  }, data, host);
}
