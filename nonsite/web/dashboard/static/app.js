/* nonsite dashboard. Plain JavaScript, no build step, no CDN: each page's shell is rendered
   by the server; this script fills it from the API (/api/v1) and keeps it live through
   server-sent events. Text from the API is always inserted as text, never as HTML. */
"use strict";

const I18N = {
  zh: {
    "app.title": "非现场监管预警平台", "app.subtitle": "感知 → 派单 → 执法 联动",
    "login.username": "用户名", "login.password": "密码", "login.submit": "登录",
    "login.failed": "用户名或密码错误", "login.throttled": "登录失败次数过多，请稍后再试",
    "nav.fleet": "企业总览", "nav.cases": "告警队列", "nav.work_orders": "派单看板",
    "nav.enterprise": "本企业", "nav.ops": "运行", "nav.logout": "退出",
    "ops.title": "运行与数据质量", "ops.silences": "维护时段（静默）", "ops.until": "截止",
    "ops.reason": "原因", "ops.by": "设置人", "ops.add_silence": "添加静默",
    "ops.dead_letters": "无法使用的报文（死信）", "ops.received": "接收时间", "ops.reason_code": "原因",
    "ops.detail": "详情", "ops.none": "无", "ops.ready": "服务正常", "ops.not_ready": "服务异常", "lang": "English", "all": "全部",
    "role.monitor": "监测中心", "role.supervisor": "监管", "role.enforcer": "执法",
    "role.enterprise": "企业", "role.admin": "运维", "role.system": "系统",
    "action.sense": "感知", "action.remind": "提醒企业", "action.explain": "企业说明",
    "action.verify": "平台核实", "action.dispatch": "派单", "action.arrive": "到达现场",
    "action.report": "现场反馈", "action.close": "办结", "action.comment": "备注",
    "action.escalate": "升级", "action.resolve": "自动消除", "action.reopen": "回头看复发",
    "action.notify": "通知", "action.condition_cleared": "条件消除",
    "case.time": "时间", "fleet.positive_list": "正面清单", "fleet.title": "企业总览", "fleet.region": "区域", "fleet.industry": "行业",
    "industry.thermal_power": "火电", "industry.heating": "供热", "industry.boiler": "锅炉",
    "industry.msw_incineration": "生活垃圾焚烧", "industry.municipal_wastewater": "城镇污水处理",
    "industry.wastewater_municipal": "城镇污水处理", "industry.manufacturing": "制造业",
    "industry.textile_dyeing": "印染", "industry.furniture": "家具制造", "industry.chemical": "化工",
    "industry.cement": "水泥", "industry.steel": "钢铁", "industry.paper": "造纸",
    "status.normal": "正常", "status.warning": "预警", "status.alarm": "报警",
    "status.offline": "离线", "status.stopped": "停产", "fleet.total": "企业",
    "fleet.open_alarms": "未办结报警", "fleet.open_warnings": "未办结预警",
    "fleet.outlets": "排放口", "fleet.meters": "用电监控",
    "cases.title": "告警队列", "cases.tier": "级别", "cases.state": "状态", "cases.rule": "规则",
    "cases.open": "仅未办结", "cases.bulk_confirm": "批量核实：属实", "cases.bulk_false": "批量核实：误报",
    "cases.empty": "没有符合条件的案件", "cases.bulk_reason": "误报原因（必填）",
    "col.enterprise": "企业", "col.source": "监测点", "col.rule": "规则", "col.tier": "级别",
    "col.value": "监测值 / 限值", "col.state": "状态", "col.count": "次数", "col.last_seen": "最近",
    "col.due": "期限",
    "tier.warning": "预警", "tier.alarm": "报警",
    "state.sensed": "已感知", "state.reminded": "已提醒", "state.explained": "已说明",
    "state.verified": "已核实", "state.dispatched": "已派单", "state.on_site": "现场检查",
    "state.reported": "已反馈", "state.closed": "已办结", "state.resolved": "已消除",
    "case.chart": "监测数据与限值", "case.evidence": "证据", "case.actions": "操作",
    "case.audit": "全过程记录", "case.export_json": "导出 JSON", "case.peak": "最大超标倍数",
    "case.first_seen": "首次", "case.last_seen": "最近", "case.count": "次数", "case.params": "参数",
    "case.factor": "因子", "case.escalation": "升级原因", "case.brigade": "执法大队",
    "case.explain_due": "说明期限", "case.feedback_due": "反馈期限", "case.recheck": "回头看至",
    "case.no_actions": "当前角色无可执行操作", "case.limit": "限值", "case.hourly": "有效小时均值",
    "case.raw": "原始数据", "case.marked": "标记时段", "case.chart_from_trail": "图中为案件证据中的小时值",
    "case.condition_cleared": "条件已消除", "case.recurrence": "复发次数",
    "act.remind": "提醒企业", "act.explain": "提交说明", "act.verify": "平台核实",
    "act.dispatch": "派单", "act.arrive": "到达现场", "act.report": "现场反馈", "act.close": "办结",
    "act.comment": "备注", "act.escalate": "升级为报警",
    "f.note": "说明 / 备注", "f.outcome": "结论", "f.brigade": "执法大队", "f.kind": "类型",
    "f.due": "反馈期限", "f.case_number": "案号", "f.marking": "工况标记",
    "out.confirmed": "属实", "out.false_positive": "误报",
    "out.violation_confirmed": "违法事实成立", "out.not_confirmed": "未发现违法",
    "out.rectification_ordered": "责令改正", "out.check_failed": "非现场核查未通过",
    "kind.on_site": "现场检查", "kind.non_site_check": "非现场核查",
    "mark.none": "无", "mark.startup": "启炉", "mark.shutdown": "停炉", "mark.fault": "故障",
    "mark.maintenance": "维护检修", "mark.calibration": "校准",
    "wo.title": "派单看板", "wo.open": "待处置", "wo.on_site": "现场检查", "wo.reported": "已反馈",
    "wo.closed": "已办结", "wo.due": "期限", "wo.overdue": "已逾期",
    "ent.title": "本企业", "ent.reminders": "待说明的提醒", "ent.none": "暂无待说明的提醒",
    "ent.all": "本企业案件", "ent.markings": "已申报标记", "ent.declare": "申报工况标记",
    "ent.declare_submit": "申报",
    "err.generic": "操作未完成",
  },
  en: {
    "app.title": "Off-site Supervision Alerts", "app.subtitle": "sense → dispatch → enforce",
    "login.username": "Username", "login.password": "Password", "login.submit": "Log in",
    "login.failed": "Wrong username or password", "login.throttled": "Too many failed logins; try later",
    "nav.fleet": "Fleet", "nav.cases": "Alert queue", "nav.work_orders": "Work orders",
    "nav.enterprise": "My enterprise", "nav.ops": "Operations", "nav.logout": "Log out",
    "ops.title": "Operations and data quality", "ops.silences": "Maintenance windows (silences)",
    "ops.until": "Until", "ops.reason": "Reason", "ops.by": "By", "ops.add_silence": "Add silence",
    "ops.dead_letters": "Unusable frames (dead letters)", "ops.received": "Received",
    "ops.reason_code": "Reason", "ops.detail": "Detail", "ops.none": "None",
    "ops.ready": "Ready", "ops.not_ready": "Not ready", "lang": "中文", "all": "All",
    "role.monitor": "Monitoring", "role.supervisor": "Supervision", "role.enforcer": "Enforcement",
    "role.enterprise": "Enterprise", "role.admin": "Operations", "role.system": "System",
    "action.sense": "sensed", "action.remind": "reminded", "action.explain": "explained",
    "action.verify": "verified", "action.dispatch": "dispatched", "action.arrive": "arrived",
    "action.report": "reported", "action.close": "closed", "action.comment": "comment",
    "action.escalate": "escalated", "action.resolve": "resolved", "action.reopen": "reopened",
    "action.notify": "notification", "action.condition_cleared": "condition cleared",
    "case.time": "Time", "fleet.positive_list": "Positive list", "fleet.title": "Fleet overview", "fleet.region": "Region", "fleet.industry": "Industry",
    "industry.thermal_power": "Thermal power", "industry.heating": "Heating", "industry.boiler": "Boilers",
    "industry.msw_incineration": "MSW incineration", "industry.municipal_wastewater": "Municipal wastewater",
    "industry.wastewater_municipal": "Municipal wastewater", "industry.manufacturing": "Manufacturing",
    "industry.textile_dyeing": "Textile dyeing", "industry.furniture": "Furniture", "industry.chemical": "Chemicals",
    "industry.cement": "Cement", "industry.steel": "Steel", "industry.paper": "Paper",
    "status.normal": "Normal", "status.warning": "Warning", "status.alarm": "Alarm",
    "status.offline": "Offline", "status.stopped": "Stopped", "fleet.total": "Enterprises",
    "fleet.open_alarms": "Open alarms", "fleet.open_warnings": "Open warnings",
    "fleet.outlets": "outlets", "fleet.meters": "meters",
    "cases.title": "Alert queue", "cases.tier": "Tier", "cases.state": "State", "cases.rule": "Rule",
    "cases.open": "Open only", "cases.bulk_confirm": "Verify selected: confirmed",
    "cases.bulk_false": "Verify selected: false positive", "cases.empty": "No matching cases",
    "cases.bulk_reason": "Reason (required)",
    "col.enterprise": "Enterprise", "col.source": "Source", "col.rule": "Rule", "col.tier": "Tier",
    "col.value": "Value / limit", "col.state": "State", "col.count": "Count", "col.last_seen": "Last seen",
    "col.due": "Due",
    "tier.warning": "Warning", "tier.alarm": "Alarm",
    "state.sensed": "Sensed", "state.reminded": "Reminded", "state.explained": "Explained",
    "state.verified": "Verified", "state.dispatched": "Dispatched", "state.on_site": "On site",
    "state.reported": "Reported", "state.closed": "Closed", "state.resolved": "Resolved",
    "case.chart": "Values against the limit", "case.evidence": "Evidence", "case.actions": "Actions",
    "case.audit": "Audit trail", "case.export_json": "Export JSON", "case.peak": "Peak multiple",
    "case.first_seen": "First seen", "case.last_seen": "Last seen", "case.count": "Count",
    "case.params": "Parameters", "case.factor": "Factor", "case.escalation": "Escalated because",
    "case.brigade": "Brigade", "case.explain_due": "Explanation due", "case.feedback_due": "Feedback due",
    "case.recheck": "Re-check until", "case.no_actions": "No action for your role now",
    "case.limit": "Limit", "case.hourly": "Valid hourly mean", "case.raw": "Raw data",
    "case.marked": "Marked periods", "case.chart_from_trail": "Hourly values from the case's evidence",
    "case.condition_cleared": "Condition cleared", "case.recurrence": "Recurrences",
    "act.remind": "Remind", "act.explain": "Explain", "act.verify": "Verify", "act.dispatch": "Dispatch",
    "act.arrive": "Arrived on site", "act.report": "Report", "act.close": "Close",
    "act.comment": "Comment", "act.escalate": "Escalate to alarm",
    "f.note": "Note", "f.outcome": "Outcome", "f.brigade": "Brigade", "f.kind": "Kind",
    "f.due": "Due", "f.case_number": "Case number", "f.marking": "Marking",
    "out.confirmed": "Confirmed", "out.false_positive": "False positive",
    "out.violation_confirmed": "Violation confirmed", "out.not_confirmed": "Not confirmed",
    "out.rectification_ordered": "Rectification ordered", "out.check_failed": "Non-site check failed",
    "kind.on_site": "On site", "kind.non_site_check": "Non-site check",
    "mark.none": "None", "mark.startup": "Start-up", "mark.shutdown": "Shutdown", "mark.fault": "Fault",
    "mark.maintenance": "Maintenance", "mark.calibration": "Calibration",
    "wo.title": "Work orders", "wo.open": "To do", "wo.on_site": "On site", "wo.reported": "Reported",
    "wo.closed": "Closed", "wo.due": "Due", "wo.overdue": "Overdue",
    "ent.title": "My enterprise", "ent.reminders": "Reminders to answer", "ent.none": "No open reminders",
    "ent.all": "Our cases", "ent.markings": "Declared markings", "ent.declare": "Declare a marking",
    "ent.declare_submit": "Declare",
    "err.generic": "The action did not go through",
  },
};

let LANG = localStorage.getItem("nonsite.lang") || "zh";
const t = (key) => (I18N[LANG] && I18N[LANG][key]) || I18N.zh[key] || key;
/* An enterprise's industry as configured (a code such as thermal_power) in the page's
   language; a label the dictionary does not know is shown as configured. */
const industryName = (code) => (code && t(`industry.${code}`) !== `industry.${code}` ? t(`industry.${code}`) : code);

function applyI18n(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  const lang = document.getElementById("lang");
  if (lang) lang.textContent = t("lang");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401 && document.body.dataset.page !== "login") {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("not logged in");
  }
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new Error((data && data.message) || resp.statusText);
    err.code = data && data.code; err.status = resp.status;
    throw err;
  }
  return data;
}

/* Times are China time whatever the browser's zone (an officer's phone may be set to any). */
const CHINA_TIME = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
const chinaParts = (d) => Object.fromEntries(CHINA_TIME.formatToParts(d).map((x) => [x.type, x.value]));
const fmtTime = (iso) => {
  if (!iso) return "—";
  const p = chinaParts(new Date(iso));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
};
/* A datetime-local input's value (YYYY-MM-DDTHH:MM) read as China time. */
const chinaInput = (value) => new Date(`${value.length === 16 ? `${value}:00` : value}+08:00`).toISOString();
const fmtNum = (v, unit) => (v === null || v === undefined ? "—" : `${Number(v).toLocaleString("zh-CN", { maximumFractionDigits: 3 })} ${unit || ""}`.trim());
const tierBadge = (tier) => el("span", { class: `badge ${tier}` }, t(`tier.${tier}`));
const stateBadge = (state) => el("span", { class: "badge state" }, t(`state.${state}`));
const isOverdue = (iso) => iso && new Date(iso) < new Date();

/* ---------- live updates ---------- */
let refresh = () => {};
let pending = null;
function live() {
  if (!window.EventSource) return;
  const source = new EventSource("/api/v1/events");
  const dot = document.getElementById("live");
  source.onopen = () => dot && dot.classList.add("on");
  source.onerror = () => dot && dot.classList.remove("on");
  source.addEventListener("case", () => {
    clearTimeout(pending);
    pending = setTimeout(() => refresh(), 300); // a burst of changes, one refresh
  });
}

/* ---------- pages ---------- */
const PAGES = {};

PAGES.login = () => {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = document.getElementById("login-error");
    error.textContent = "";
    try {
      await api("POST", "/api/v1/session", {
        username: form.username.value.trim(), password: form.password.value,
      });
      location.href = sameSiteTarget(new URLSearchParams(location.search).get("next"));
    } catch (err) {
      error.textContent = err.status === 429 ? t("login.throttled") : t("login.failed");
    }
  });
};

/* Where to go after logging in: ?next= only within this site. Resolved as the browser would
   (it reads "/\\evil.example" or "/\t/evil.example" as "//evil.example", another host). */
function sameSiteTarget(next) {
  if (!next) return "/";
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch (err) {
    return "/";
  }
}

PAGES.fleet = async () => {
  const items = await api("GET", "/api/v1/enterprises");
  const region = document.getElementById("f-region");
  const industry = document.getElementById("f-industry");
  for (const [select, key] of [[region, "region"], [industry, "industry"]]) {
    if (select.options.length === 1) {
      [...new Set(items.map((e) => e[key]).filter(Boolean))].sort()
        .forEach((v) => select.append(el("option", { value: v }, key === "industry" ? industryName(v) : v)));
      select.onchange = () => refresh();
    }
  }
  const shown = items.filter((e) => (!region.value || e.region === region.value)
    && (!industry.value || e.industry === industry.value));
  const by = (s) => shown.filter((e) => e.status === s).length;
  const counts = document.getElementById("counts");
  counts.replaceChildren(
    el("div", { class: "count" }, t("fleet.total"), el("b", {}, shown.length)),
    ...["normal", "warning", "alarm", "offline", "stopped"].map((s) =>
      el("div", { class: `count ${s}`, id: `count-${s}` }, el("span", { class: `badge ${s}` }, t(`status.${s}`)), el("b", {}, by(s)))),
  );
  document.getElementById("fleet").replaceChildren(...shown.map((e) => el("div",
    { class: `card ${e.status}`, id: `ent-${e.id}` },
    el("h4", {}, e.name, " ", el("span", { class: `badge ${e.status}` }, t(`status.${e.status}`))),
    el("div", { class: "meta" }, [e.region, industryName(e.industry), e.positive_list ? t("fleet.positive_list") : ""].filter(Boolean).join(" · ")),
    el("div", { class: "meta" }, `${e.outlets.length} ${t("fleet.outlets")} · ${e.meters.length} ${t("fleet.meters")}`),
    el("div", {}, el("a", { href: `/cases?enterprise_id=${encodeURIComponent(e.id)}` },
      `${t("fleet.open_alarms")} ${e.open_alarms} · ${t("fleet.open_warnings")} ${e.open_warnings}`)),
  )));
};

function caseRow(c, { select = false } = {}) {
  const due = c.state === "reminded" ? c.explain_due : ["dispatched", "on_site"].includes(c.state) ? c.feedback_due : null;
  return el("tr", { class: c.tier, "data-case": c.id },
    el("td", { class: "sel" }, select ? el("input", { type: "checkbox", class: "pick", value: c.id, "aria-label": `select ${c.id}` }) : ""),
    el("td", {}, el("a", { href: `/cases/${c.id}` }, c.id)),
    el("td", {}, c.enterprise_name),
    el("td", {}, c.source_name ? `${c.source_name}（${c.source_id}）` : c.source_id),
    el("td", {}, `${c.rule_name}（${c.rule}）`, c.factor_name ? el("div", { class: "note" }, c.factor_name) : ""),
    el("td", {}, tierBadge(c.tier)),
    el("td", { class: "num" }, `${fmtNum(c.value, c.unit)} / ${fmtNum(c.limit, c.unit)}`),
    el("td", {}, stateBadge(c.state), c.condition === "cleared" ? el("div", { class: "note" }, t("case.condition_cleared")) : ""),
    el("td", { class: "num" }, c.count),
    el("td", { class: "num" }, fmtTime(c.last_seen)),
    el("td", { class: `num ${isOverdue(due) ? "overdue" : ""}` }, due ? fmtTime(due) : "—"),
  );
}

PAGES.cases = async () => {
  const params = new URLSearchParams(location.search);
  const stateSel = document.getElementById("f-state");
  if (stateSel.options.length === 1) {
    ["sensed", "reminded", "explained", "verified", "dispatched", "on_site", "reported", "closed", "resolved"]
      .forEach((s) => stateSel.append(el("option", { value: s }, t(`state.${s}`))));
    ["f-tier", "f-state", "f-rule", "f-open"].forEach((id) => { document.getElementById(id).onchange = () => refresh(); });
  }
  const q = new URLSearchParams({ limit: "200" });
  const tier = document.getElementById("f-tier").value; if (tier) q.set("tier", tier);
  const state = stateSel.value; if (state) q.append("state", state);
  const rule = document.getElementById("f-rule").value.trim(); if (rule) q.set("rule", rule);
  if (document.getElementById("f-open").checked) q.set("open", "true");
  if (params.get("enterprise_id")) q.set("enterprise_id", params.get("enterprise_id"));
  const page = await api("GET", `/api/v1/cases?${q}`);
  const canBulk = document.body.dataset.role === "monitor";
  document.getElementById("bulk").hidden = !canBulk;
  const verifiable = (c) => ["sensed", "reminded", "explained"].includes(c.state);
  document.querySelector("#cases tbody").replaceChildren(
    ...page.items.map((c) => caseRow(c, { select: canBulk && verifiable(c) })));
  document.getElementById("cases-empty").hidden = page.items.length > 0;
  const all = document.getElementById("select-all");
  all.hidden = !canBulk;
  all.onchange = () => document.querySelectorAll("input.pick").forEach((b) => { b.checked = all.checked; });
  const bulk = async (outcome) => {
    const ids = [...document.querySelectorAll("input.pick:checked")].map((b) => Number(b.value));
    if (!ids.length) return;
    let note = "";
    if (outcome === "false_positive") {
      note = prompt(t("cases.bulk_reason")) || "";
      if (!note.trim()) return;
    }
    await api("POST", "/api/v1/cases/verify", { case_ids: ids, outcome, note });
    all.checked = false;
    refresh();
  };
  document.getElementById("bulk-confirm").onclick = () => bulk("confirmed");
  document.getElementById("bulk-false").onclick = () => bulk("false_positive");
};

/* The fields each action asks for. */
const ACTION_FIELDS = {
  remind: [], arrive: [],
  explain: ["note", "marking"], verify: ["outcome:confirmed,false_positive", "note"],
  dispatch: ["brigade", "kind", "due", "note"],
  report: ["outcome:violation_confirmed,not_confirmed,rectification_ordered,check_failed", "case_number", "note"],
  close: ["note"], comment: ["note"], escalate: ["note"],
};

function actionForm(detail, action, done) {
  const c = detail.case;
  const fields = ACTION_FIELDS[action] || ["note"];
  const form = el("form", { class: "action", id: `act-${action}` });
  for (const spec of fields) {
    const [name, options] = spec.split(":");
    if (name === "note") form.append(el("textarea", { name: "note", placeholder: t("f.note"), "aria-label": t("f.note") }));
    else if (name === "outcome") form.append(el("select", { name: "outcome", "aria-label": t("f.outcome") },
      ...options.split(",").map((o) => el("option", { value: o }, t(`out.${o}`)))));
    else if (name === "brigade") form.append(el("input", { name: "brigade", value: c.brigade || "", placeholder: t("f.brigade"), size: 6, "aria-label": t("f.brigade") }));
    else if (name === "kind") form.append(el("select", { name: "kind", "aria-label": t("f.kind") },
      el("option", { value: "" }, "—"),
      ...["on_site", "non_site_check"].map((k) => el("option", { value: k }, t(`kind.${k}`)))));
    else if (name === "due") form.append(el("input", { name: "due", type: "datetime-local", "aria-label": t("f.due") }));
    else if (name === "case_number") form.append(el("input", { name: "case_number", placeholder: t("f.case_number"), "aria-label": t("f.case_number") }));
    else if (name === "marking") form.append(el("select", { name: "marking", "aria-label": t("f.marking") },
      ...["none", "startup", "shutdown", "fault", "maintenance", "calibration"].map((m) => el("option", { value: m }, t(`mark.${m}`)))));
  }
  const error = el("span", { class: "error" });
  form.append(el("button", { type: "submit", class: action === "escalate" ? "danger" : "primary" }, t(`act.${action}`)), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { version: c.version, note: f.get("note") || "" };
    if (f.get("outcome")) body.outcome = f.get("outcome");
    if (f.get("brigade")) body.brigade = f.get("brigade");
    if (f.get("kind")) body.kind = f.get("kind");
    if (f.get("due")) body.due_at = chinaInput(f.get("due"));
    if (f.get("case_number")) body.case_number = f.get("case_number");
    if (f.get("marking") && f.get("marking") !== "none") body.refs = { marking: f.get("marking") };
    try {
      await api("POST", `/api/v1/cases/${c.id}/actions/${action}`, body);
      done();
    } catch (err) {
      error.textContent = `${t("err.generic")}: ${err.message}`;
    }
  });
  return form;
}

function chartFromTrail(detail, host) {
  const rows = (detail.evidence.trail || []).filter((e) => e.value !== null && e.value !== undefined);
  const xs = rows.map((e) => new Date(e.window_start).getTime() / 1000);
  const ys = rows.map((e) => e.value);
  const limit = rows.map((e) => e.limit ?? detail.case.limit);
  return [[xs, ys, limit], [t("case.hourly"), t("case.limit")]];
}

async function drawChart(detail) {
  const host = document.getElementById("chart");
  const c = detail.case;
  let data; let names; let note = "";
  try {
    const since = new Date(new Date(c.first_seen).getTime() - 24 * 3600e3).toISOString();
    const until = new Date(Math.max(new Date(c.last_seen).getTime() + 6 * 3600e3, Date.now() - 1)).toISOString();
    const s = await api("GET", `/api/v1/enterprises/${encodeURIComponent(c.enterprise_id)}/outlets/${encodeURIComponent(c.source_id)}/series?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until > since ? until : new Date().toISOString())}`);
    [data, names, note] = seriesData(s, c);
  } catch (err) {
    [data, names] = chartFromTrail(detail, host);
    note = t("case.chart_from_trail");
  }
  document.getElementById("chart-note").textContent = note;
  host.replaceChildren();
  if (!window.uPlot || !data[0].length) return;
  const colors = ["#0b5394", "#7aa6d6", "#c62828"];
  const opts = {
    width: host.clientWidth || 900, height: 300,
    // the time axis in China time, 24-hour, whatever the browser's zone
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Asia/Shanghai"),
    series: [{ label: t("case.time"), value: (u, v) => (v == null ? "—" : fmtTime(v * 1e3)) }, ...names.map((n, i) => ({
      label: n, value: (u, v) => fmtNum(v, ""), stroke: colors[i % colors.length], width: i === names.length - 1 ? 2 : 1.5,
      dash: i === names.length - 1 ? [6, 4] : undefined, points: { show: i === 0 },
    }))],
    axes: [{ values: (u, splits) => splits.map((s) => {
      const p = chinaParts(new Date(s * 1e3));
      return p.hour === "00" && p.minute === "00" ? `${p.month}-${p.day}` : `${p.hour}:${p.minute}`;
    }) }, { label: c.unit }],
    // A lone point would stretch the time axis over years: show a day around it instead.
    scales: data[0].length > 1 ? {} : { x: { range: [data[0][0] - 43200, data[0][0] + 43200] } },
  };
  new window.uPlot(opts, data, host);
}

/* The series API's answer as uPlot columns: the valid hourly means (converted to the
   reference O2 where the limit applies to converted values), the raw values, the limit. */
function seriesData(s, c) {
  const factor = c.factor || Object.keys(s.hourly || {})[0];
  const hourly = (s.hourly && s.hourly[factor]) || [];
  const raw = ((s.raw && s.raw[factor]) || []).filter((r) => r.interval !== "hour" && r.interval !== "day");
  const converted = hourly.some((h) => h.converted !== null && h.converted !== undefined);
  const sec = (iso) => new Date(iso).getTime() / 1000;
  const times = [...new Set([...hourly.map((h) => sec(h.t)), ...raw.map((r) => sec(r.t))])].sort((a, b) => a - b);
  const at = (list, key) => {
    const m = new Map(list.map((p) => [sec(p.t), p[key]]));
    return times.map((x) => (m.has(x) ? m.get(x) : null));
  };
  const lim = s.limits && s.limits[factor];
  const limitValue = c.limit ?? (lim ? (lim.hour_alarm ?? lim.day_alarm) : null);
  const marked = (s.marked || []).map((m) => `${fmtTime(m.start)}–${fmtTime(m.end)} ${t(`mark.${m.type}`)}`);
  const note = marked.length ? `${t("case.marked")}: ${marked.join("；")}` : "";
  return [[times, at(hourly, converted ? "converted" : "value"), at(raw, "value"), times.map(() => limitValue)],
    [t("case.hourly"), t("case.raw"), t("case.limit")], note];
}

PAGES.case = async () => {
  const id = document.getElementById("case").dataset.caseId;
  const detail = await api("GET", `/api/v1/cases/${id}`);
  const c = detail.case;
  document.getElementById("case-head").replaceChildren(
    el("h2", {}, `#${c.id} ${c.enterprise_name}`),
    el("span", {}, c.source_name ? `${c.source_name}（${c.source_id}）` : c.source_id),
    el("span", {}, `${c.rule_name}（${c.rule}）`), tierBadge(c.tier), stateBadge(c.state),
    el("span", { class: "big" }, fmtNum(c.value, c.unit)),
    el("span", {}, `${t("case.limit")} ${fmtNum(c.limit, c.unit)}`),
  );
  const kv = [
    ["case.factor", c.factor_name || "—"],
    ["case.first_seen", fmtTime(c.first_seen)], ["case.last_seen", fmtTime(c.last_seen)],
    ["case.count", c.count], ["case.peak", c.peak_multiple ?? "—"],
    ["case.brigade", c.brigade || "—"], ["case.explain_due", fmtTime(c.explain_due)],
    ["case.feedback_due", fmtTime(c.feedback_due)], ["case.recheck", fmtTime(c.recheck_until)],
    ["case.recurrence", c.recurrence], ["case.escalation", c.escalation || "—"],
    ["case.params", (detail.evidence.first && detail.evidence.first.params) || "—"],
  ];
  document.getElementById("evidence").replaceChildren(...kv.map(([k, v]) => el("tr", {}, el("td", {}, t(k)), el("td", {}, v))));
  const actions = document.getElementById("actions");
  actions.replaceChildren(...(detail.actions.length
    ? detail.actions.map((a) => actionForm(detail, a, () => refresh()))
    : [el("p", { class: "empty" }, t("case.no_actions"))]));
  document.getElementById("audit").replaceChildren(...detail.events.map((e) => el("li", {},
    el("span", { class: "when" }, fmtTime(e.at)),
    el("b", {}, e.actor), ` (${t(`role.${e.role}`)}) `, el("span", { class: "action", "data-action": e.action }, t(`action.${e.action}`)),
    e.to_state && e.to_state !== e.from_state ? ` → ${t(`state.${e.to_state}`)}` : "",
    e.note ? el("div", { class: "note" }, e.note) : "")));
  const exp = document.getElementById("export-json");
  exp.href = `/api/v1/cases/${c.id}`;
  exp.download = `case-${c.id}.json`;
  await drawChart(detail);
};

PAGES.work_orders = async () => {
  const [orders, page] = await Promise.all([
    api("GET", "/api/v1/work-orders"), api("GET", "/api/v1/cases?limit=500")]);
  const byId = new Map(page.items.map((c) => [c.id, c]));
  document.querySelectorAll("#board .column").forEach((col) => {
    const stage = col.dataset.stage;
    const cards = orders.filter((o) => (stage === "closed" ? ["closed"].includes(o.state) : o.state === stage))
      .map((o) => {
        const c = byId.get(o.case_id);
        return el("div", { class: `card ${c ? c.tier : ""} ${o.overdue ? "late" : ""}`, id: `wo-${o.id}` },
          el("h4", {}, el("a", { href: `/cases/${o.case_id}` }, `#${o.case_id} `), c ? c.enterprise_name : ""),
          c ? el("div", { class: "meta" }, `${c.rule_name}（${c.rule}） · ${t(`kind.${o.kind}`)} · ${o.brigade}`) : "",
          el("div", { class: o.overdue ? "overdue" : "meta" }, `${t("wo.due")} ${fmtTime(o.due_at)}${o.overdue ? " · " + t("wo.overdue") : ""}`));
      });
    col.querySelector(".cards").replaceChildren(...cards);
  });
};

PAGES.enterprise = async () => {
  const own = document.body.dataset.enterprise;
  const [ent, page] = await Promise.all([
    api("GET", `/api/v1/enterprises/${encodeURIComponent(own)}`),
    api("GET", "/api/v1/cases?limit=200")]);
  document.getElementById("ent-status").replaceChildren(
    el("h3", {}, ent.name, " ", el("span", { class: `badge ${ent.status}` }, t(`status.${ent.status}`))),
    el("div", { class: "meta" }, `${t("fleet.open_alarms")} ${ent.open_alarms} · ${t("fleet.open_warnings")} ${ent.open_warnings}`),
    ent.markings && ent.markings.length ? el("div", {}, el("h4", {}, t("ent.markings")),
      el("ul", {}, ...ent.markings.map((m) => el("li", {}, `${m.outlet} ${t(`mark.${m.type}`)} ${fmtTime(m.start)} – ${fmtTime(m.end)} ${m.reason || ""}`)))) : "",
  );
  const reminders = page.items.filter((c) => ["sensed", "reminded"].includes(c.state));
  const body = document.querySelector("#reminders tbody");
  body.replaceChildren(...reminders.map((c) => {
    const row = caseRow(c);
    const form = actionForm({ case: c }, "explain", () => refresh());
    return [row, el("tr", { class: "explain-row" }, el("td", { colspan: 11 }, form))];
  }).flat());
  document.getElementById("reminders-empty").hidden = reminders.length > 0;
  document.querySelector("#ent-cases tbody").replaceChildren(...page.items.map((c) => caseRow(c)));
  const outlets = document.getElementById("marking-outlet");
  if (!outlets.options.length) ent.outlets.forEach((o) => outlets.append(el("option", { value: o.id }, o.name ? `${o.name}（${o.id}）` : o.id)));
  const form = document.getElementById("marking-form");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { outlet: f.get("outlet"), type: f.get("type"), reason: f.get("reason"),
      start: chinaInput(f.get("start")), end: chinaInput(f.get("end")) };
    try { await api("POST", "/api/v1/markings", body); form.reset(); refresh(); }
    catch (err) { document.getElementById("marking-error").textContent = `${t("err.generic")}: ${err.message}`; }
  };
};

PAGES.ops = async () => {
  const ready = await fetch("/readyz").then((r) => r.json()).catch(() => ({ status: "not ready" }));
  const badge = document.getElementById("ready");
  badge.textContent = ready.status === "ready" ? t("ops.ready") : t("ops.not_ready");
  badge.className = `badge ${ready.status === "ready" ? "" : "alarm"}`;
  const silences = await api("GET", "/api/v1/silences").catch(() => []);
  document.querySelector("#silences tbody").replaceChildren(...silences.map((s) => el("tr", {},
    el("td", {}, s.id), el("td", {}, s.enterprise_id || "*"), el("td", {}, s.source_id || "*"),
    el("td", {}, s.rule || "*"), el("td", { class: "num" }, fmtTime(s.ends_at)),
    el("td", {}, s.reason), el("td", {}, s.created_by))));
  const form = document.getElementById("silence-form");
  form.hidden = !["monitor", "supervisor"].includes(document.body.dataset.role);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { reason: f.get("reason"), ends_at: chinaInput(f.get("ends_at")) };
    for (const k of ["enterprise_id", "source_id", "rule"]) if (f.get(k)) body[k] = f.get(k);
    try { await api("POST", "/api/v1/silences", body); form.reset(); refresh(); }
    catch (err) { document.getElementById("silence-error").textContent = `${t("err.generic")}: ${err.message}`; }
  };
  const letters = await api("GET", "/api/v1/dead-letters?limit=50").catch(() => null);
  const body = document.querySelector("#dead-letters tbody");
  body.replaceChildren(...(letters || []).map((d) => el("tr", {},
    el("td", { class: "num" }, fmtTime(d.received_at)), el("td", {}, d.reason), el("td", {}, d.mn || "—"),
    el("td", {}, d.detail))));
  document.getElementById("dead-letters-none").hidden = letters !== null && letters.length > 0 ? true : false;
  document.getElementById("dead-letters").hidden = letters === null;
};

/* ---------- start ---------- */
document.addEventListener("DOMContentLoaded", () => {
  applyI18n();
  const lang = document.getElementById("lang");
  if (lang) lang.onclick = () => {
    LANG = LANG === "zh" ? "en" : "zh";
    localStorage.setItem("nonsite.lang", LANG);
    applyI18n();
    refresh();
  };
  const logout = document.getElementById("logout");
  if (logout) logout.onclick = async () => { await api("DELETE", "/api/v1/session"); location.href = "/login"; };
  let name = document.body.dataset.page;
  if (name === "cases" && document.getElementById("case")) name = "case";
  const run = PAGES[name];
  if (!run) return;
  refresh = async () => {
    try { await run(); applyI18n(); } catch (err) { console.error(err); }
    document.body.dataset.ready = "1";
  };
  refresh();
  if (name !== "login") live();
});
