import { drawChart } from "../chart.js";
import { api, el, fmtNum, fmtTime, refresh, stateBadge, tierBadge } from "../core.js";
import { t } from "../i18n.js";
import { actionForm } from "../widgets.js";

export default async function render() {
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
}
