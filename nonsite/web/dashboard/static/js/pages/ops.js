/* 运行: the service's readiness, data quality per enterprise, maintenance windows (added, edited,
   ended) and dead letters with their reason and sender in Chinese. A part the role may not
   read says so (无权查看), a part that could not be read says why: never 无 in their place. */
import { api, el, fmtTime, parseChinaTime, refresh, timeField } from "../core.js";
import { t, tf } from "../i18n.js";

const QUALITY_ROWS = 20; // the worst ones first; the rest on demand
let qualityWindow = "24h";
let qualityAll = false;
let editing = null; // the silence whose edit form is open: a live refresh leaves it alone

const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
/* [commands] clock_tolerance_s, beyond which the platform sets a logger's clock (校时): the
   quality figures carry it; this default only until they have come. */
let clockTolerance = 60;
const problem = (err) => (err.status === 403 ? t("ops.no_permission") : `${t("ops.read_failed")}：${err.message}`);
const reasonName = (code) => (t(`dl.${code}`) !== `dl.${code}` ? t(`dl.${code}`) : code);

async function read(path) {
  try { return { data: await api("GET", path) }; } catch (err) { return { error: err }; }
}

/* A row whose cells carry their column's name (a phone shows the table as cards). A cell is
   its content (text, a node, a list of them) or num(content, class). */
const num = (content, cls = "num") => ({ content, cls });
function row(table, cells, attrs = {}) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  return el("tr", attrs, ...cells.map((cell, i) => {
    const { content, cls } = cell && cell.cls !== undefined ? cell : { content: cell, cls: null };
    return el("td", { class: cls, "data-label": heads[i] || null }, content);
  }));
}

/* Shows a part's rows, or what stands in for them: 无 only when it was read and is empty. */
function fill(table, empty, result, rows, none) {
  const body = table.querySelector("tbody");
  if (result.error) {
    body.replaceChildren();
    table.hidden = true;
    empty.hidden = false;
    empty.textContent = problem(result.error);
    return;
  }
  body.replaceChildren(...rows);
  table.hidden = rows.length === 0;
  empty.hidden = rows.length > 0;
  empty.textContent = none;
}

export default async function render() {
  const role = document.body.dataset.role;
  const canEdit = ["monitor", "supervisor"].includes(role);
  const [ready, fleet, silences, letters] = await Promise.all([
    fetch("/readyz").then((r) => r.json()).catch(() => ({ status: "not ready" })),
    read("/api/v1/enterprises"), read("/api/v1/silences"), read("/api/v1/dead-letters?limit=50")]);
  const badge = document.getElementById("ready");
  badge.textContent = ready.status === "ready" ? t("ops.ready") : t("ops.not_ready");
  badge.className = `badge ${ready.status === "ready" ? "" : "alarm"}`;
  const ents = new Map((fleet.data || []).map((e) => [e.id, e]));
  renderSilences(silences, ents, canEdit);
  renderSilenceForm(ents, canEdit);
  renderDeadLetters(letters);
  await renderQuality();
}

/* ---------- maintenance windows ---------- */

function scopeText(s, ents) {
  const e = s.enterprise_id ? ents.get(s.enterprise_id) : null;
  const source = e && s.source_id ? [...e.outlets, ...e.meters].find((x) => x.id === s.source_id) : null;
  return [
    s.enterprise_id ? (e ? e.name : s.enterprise_id) : t("ops.any_enterprise"),
    s.source_id ? (source && source.name ? `${source.name}（${s.source_id}）` : s.source_id) : t("ops.any_source"),
    s.rule || t("ops.any_rule"),
  ].join(" · ");
}

function renderSilences(result, ents, canEdit) {
  const table = document.getElementById("silences");
  if (editing !== null && !result.error) return; // an edit is open: keep it as it is
  const rows = (result.data || []).map((s) => row(table, [
    s.id, scopeText(s, ents),
    num(`${fmtTime(s.starts_at)} – ${fmtTime(s.ends_at)}`),
    s.reason,
    [s.created_by, s.edited_by ? el("div", { class: "note" }, `${s.edited_by} ${t("ops.edited")}`) : ""],
    canEdit ? num(el("div", { class: "buttons" },
      el("button", { type: "button", class: "edit", onclick: () => openEdit(table, s) }, t("ops.edit")),
      el("button", { type: "button", class: "end danger", onclick: () => endSilence(s) }, t("ops.end"))), "actions") : "",
  ], { "data-silence": s.id, class: s.active ? "" : "upcoming" }));
  fill(table, document.getElementById("silences-none"), result, rows, t("ops.no_silences"));
  table.querySelectorAll("thead th:last-child").forEach((th) => { th.hidden = !canEdit; });
}

function openEdit(table, s) {
  editing = s.id;
  const error = el("span", { class: "error", role: "alert" });
  const form = el("form", { class: "action labelled silence-edit" },
    timeField(`edit-ends-${s.id}`, "ends_at", t("ops.until"), fmtTime(s.ends_at)),
    el("div", { class: "field wide" }, el("label", { for: `edit-reason-${s.id}` }, t("ops.reason")),
      el("input", { name: "reason", id: `edit-reason-${s.id}`, required: true, maxlength: 1000, value: s.reason })),
    el("div", { class: "buttons" },
      el("button", { type: "submit", class: "primary" }, t("ops.save")),
      el("button", { type: "button", onclick: () => { editing = null; refresh(); } }, t("ops.cancel"))),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const ends = parseChinaTime(f.get("ends_at"));
    if (!ends) { error.textContent = t("time.bad"); return; }
    try {
      await api("PATCH", `/api/v1/silences/${s.id}`, { ends_at: ends, reason: f.get("reason") });
      editing = null;
      refresh();
    } catch (err) { error.textContent = `${t("err.generic")}：${err.message}`; }
  });
  const old = table.querySelector(`tr[data-silence="${s.id}"]`);
  old.replaceWith(el("tr", { class: "editing", "data-silence": s.id }, el("td", { colspan: 6 }, form)));
}

async function endSilence(s) {
  if (!window.confirm(t("ops.end_confirm"))) return;
  try { await api("DELETE", `/api/v1/silences/${s.id}`); } catch (err) { window.alert(`${t("err.generic")}：${err.message}`); }
  refresh();
}

function renderSilenceForm(ents, canEdit) {
  const form = document.getElementById("silence-form");
  form.hidden = !canEdit;
  if (!canEdit) return;
  const entSel = form.elements.enterprise_id;
  const srcSel = form.elements.source_id;
  if (entSel.options.length === 1) {
    [...ents.values()].sort((a, b) => a.name.localeCompare(b.name, "zh-CN"))
      .forEach((e) => entSel.append(el("option", { value: e.id }, e.name)));
  }
  entSel.onchange = () => {
    const e = ents.get(entSel.value);
    srcSel.replaceChildren(el("option", { value: "" }, t("ops.any_source")),
      ...(e ? [...e.outlets, ...e.meters].map((x) => el("option", { value: x.id }, x.name ? `${x.name}（${x.id}）` : x.id)) : []));
  };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const error = document.getElementById("silence-error");
    const ends = parseChinaTime(f.get("ends_at"));
    if (!ends) { error.textContent = t("time.bad"); return; }
    const body = { reason: f.get("reason"), ends_at: ends };
    for (const k of ["enterprise_id", "source_id", "rule"]) if (f.get(k)) body[k] = f.get(k).trim();
    try {
      await api("POST", "/api/v1/silences", body);
      error.textContent = "";
      form.reset();
      entSel.onchange();
      refresh();
    } catch (err) { error.textContent = `${t("err.generic")}：${err.message}`; }
  };
}

/* ---------- dead letters ---------- */

function renderDeadLetters(result) {
  const table = document.getElementById("dead-letters");
  const rows = (result.data || []).map((d) => row(table, [
    num(fmtTime(d.received_at)),
    reasonName(d.reason),
    d.enterprise_id ? [d.enterprise_name, el("div", { class: "note" }, d.source_name ? `${d.source_name}（${d.source_id}）` : d.source_id)]
      : el("span", { class: "note" }, t("ops.unknown_source")),
    num(d.mn || "—", "mn"),
    el("details", {}, el("summary", {}, t("ops.tech_detail")),
      el("div", { class: "tech" }, el("code", {}, d.reason), " ", d.detail, el("div", { class: "note" }, d.topic))),
  ]));
  fill(table, document.getElementById("dead-letters-none"), result, rows, t("ops.none"));
}

/* ---------- data quality ---------- */

/* A logger clock's drift (seconds, + ahead) as 快 3 分 05 秒 / 慢 40 秒, — when not read;
   beyond the tolerance in the warning style. */
function clockDrift(s) {
  if (s === null || s === undefined) return num("—", "num drift");
  const a = Math.round(Math.abs(s));
  const [d, h, m, sec] = [Math.floor(a / 86400), Math.floor((a % 86400) / 3600), Math.floor((a % 3600) / 60), a % 60];
  const parts = d ? [[d, "d"], [h, "h"]] : h ? [[h, "h"], [m, "m"], [sec, "s"]] : m ? [[m, "m"], [sec, "s"]] : [[sec, "s"]];
  const span = parts.map(([v, unit], i) => `${i ? String(v).padStart(2, "0") : v} ${t(`q.drift.${unit}`)}`).join(" ");
  const text = a === 0 ? span : tf(s > 0 ? "q.drift.ahead" : "q.drift.behind", { d: span });
  if (Math.abs(s) <= clockTolerance) return num(text, "num drift");
  return num(el("span", { class: "badge warning", title: tf("q.drift.over", { n: clockTolerance }) }, text), "num drift over");
}

/* The column 时钟偏差 after the others of the template's header (added once). */
function driftHead(table) {
  if (table.querySelector("thead th.drift")) return;
  table.querySelector("thead tr").append(
    el("th", { class: "num drift", "data-i18n": "q.clock", "data-i18n-title": "q.clock_title", title: t("q.clock_title") }, t("q.clock")));
}

async function renderQuality() {
  const table = document.getElementById("quality");
  const none = document.getElementById("quality-none");
  const more = document.getElementById("quality-more");
  document.querySelectorAll("#quality-panel .segmented button").forEach((b) => {
    b.setAttribute("aria-pressed", String(b.dataset.window === qualityWindow));
    b.onclick = () => { qualityWindow = b.dataset.window; refresh(); };
  });
  const result = await read(`/api/v1/quality?window=${qualityWindow}`);
  const q = result.data;
  if (q && typeof q.clock_tolerance_s === "number") clockTolerance = q.clock_tolerance_s;
  document.getElementById("quality-range").textContent = q ? `${fmtTime(q.since)} – ${fmtTime(q.until)}（${t("ops.china_time")}）` : "";
  const shown = q ? (qualityAll ? q.enterprises : q.enterprises.slice(0, QUALITY_ROWS)) : [];
  const low = (v) => (v !== null && v !== undefined && v < 0.9 ? "num low" : "num");
  driftHead(table);
  const rows = shown.map((e) => row(table, [
    e.enterprise_name, num(e.outlets || t("q.no_outlet")),
    num(pct(e.transmission_rate), low(e.transmission_rate)), num(pct(e.effective_rate), low(e.effective_rate)),
    num(pct(e.valid_hour_rate), low(e.valid_hour_rate)), num(e.dead_letters, e.dead_letters ? "num dead some" : "num dead"),
    clockDrift(e.clock_drift_s),
  ], { "data-enterprise": e.enterprise_id }));
  fill(table, none, result, rows, t("q.empty"));
  document.getElementById("quality-foot").textContent = q && q.unattributed_dead_letters
    ? tf("q.unattributed", { n: q.unattributed_dead_letters }) : "";
  more.hidden = !q || q.enterprises.length <= QUALITY_ROWS;
  more.textContent = qualityAll ? tf("q.less", { n: QUALITY_ROWS }) : tf("q.more", { n: q ? q.enterprises.length : 0 });
  more.onclick = () => { qualityAll = !qualityAll; refresh(); };
}
