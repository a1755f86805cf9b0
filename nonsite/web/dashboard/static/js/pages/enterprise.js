import { api, el, fmtTime, parseChinaTime, refresh } from "../core.js";
import { t } from "../i18n.js";
import { ratingPanel } from "../risk.js";
import { actionForm, caseRow } from "../widgets.js";

export default async function render() {
  const own = document.body.dataset.enterprise;
  const [ent, page, risk] = await Promise.all([
    api("GET", `/api/v1/enterprises/${encodeURIComponent(own)}`),
    api("GET", "/api/v1/cases?limit=200"),
    api("GET", `/api/v1/enterprises/${encodeURIComponent(own)}/risk`)]);
  // its own 环保码 and why: the cases it names are its own (a clue's stays unnamed to it)
  document.getElementById("ent-risk").replaceChildren(risk.rating
    ? ratingPanel(risk.rating, risk.history) : el("p", { class: "empty" }, t("risk.no_history")));
  document.getElementById("ent-status").replaceChildren(
    el("h3", {}, ent.name, " ", el("span", { class: `badge ${ent.status}` }, t(`status.${ent.status}`))),
    el("div", { class: "meta" }, `${t("fleet.open_alarms")} ${ent.open_alarms} · ${t("fleet.open_warnings")} ${ent.open_warnings}`),
    ent.markings && ent.markings.length ? el("div", {}, el("h4", {}, t("ent.markings")),
      el("ul", {}, ...ent.markings.map((m) => el("li", {}, `${m.outlet} ${t(`mark.${m.type}`)} ${fmtTime(m.start)} – ${fmtTime(m.end)} ${m.reason || ""}`)))) : "",
  );
  // each outlet's own page: its factors, limits and hour values over a chosen range
  document.getElementById("outlets").replaceChildren(...ent.outlets.map((o) => el("li", {},
    el("a", { href: `/enterprises/${encodeURIComponent(ent.id)}/outlets/${encodeURIComponent(o.id)}` }, o.name || o.id),
    el("span", { class: "note" }, ` ${t(`outlet.kind.${o.kind}`)} · ${o.id} · MN ${o.mn}`))));
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
    const error = document.getElementById("marking-error");
    const [start, end] = [parseChinaTime(f.get("start")), parseChinaTime(f.get("end"))];
    if (!start || !end) { error.textContent = t("time.bad"); return; }
    const body = { outlet: f.get("outlet"), type: f.get("type"), reason: f.get("reason"), start, end };
    try { await api("POST", "/api/v1/markings", body); error.textContent = ""; form.reset(); refresh(); }
    catch (err) { error.textContent = `${t("err.generic")}：${err.message}`; }
  };
}
