/* Pieces several pages share: a case's row in a table, an action's form. */
import { api, chinaInput, el, fmtNum, fmtTime, isOverdue, stateBadge, tierBadge } from "./core.js";
import { t } from "./i18n.js";

export function caseRow(c, { select = false } = {}) {
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

/* The fields each action asks for. */
const ACTION_FIELDS = {
  remind: [], arrive: [],
  explain: ["note", "marking"], verify: ["outcome:confirmed,false_positive", "note"],
  dispatch: ["brigade", "kind", "due", "note"],
  report: ["outcome:violation_confirmed,not_confirmed,rectification_ordered,check_failed", "case_number", "note"],
  close: ["note"], comment: ["note"], escalate: ["note"],
};

export function actionForm(detail, action, done) {
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
