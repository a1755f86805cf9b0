/* Pieces several pages share: a case's quantity, a case's row in a table, an action's form and
   the case page's action buttons. */
import { TIME_PATTERN, api, el, fmtNum, fmtTime, isOverdue, parseChinaTime, requestKey, stateBadge, tierBadge } from "./core.js";
import { t } from "./i18n.js";

/* A unit as people read it: durations in words (小时, 分钟, 秒), the rest as given. */
export const unitName = (unit) => (unit && t(`unit.${unit}`) !== `unit.${unit}` ? t(`unit.${unit}`) : unit || "");
export const fmtQty = (v, unit) => fmtNum(v, unitName(unit));

/* What the case measures (the API's case.quantity): "5 小时 / 4 小时", or the value alone when
   the rule states no threshold. */
export function quantityText(q) {
  return q.limit === null || q.limit === undefined ? fmtQty(q.value, q.unit) : `${fmtQty(q.value, q.unit)} / ${fmtQty(q.limit, q.unit)}`;
}

/* A rule's case shows its code beside its name; a case no rule opened (a clue's, a 双随机
   inspection's) shows its name alone, in Chinese. */
export const ruleText = (c) => (c.kind === "rule" ? `${c.rule_name}（${c.rule}）` : c.rule_name);
export const sourceText = (c) =>
  c.kind === "inspection" ? c.source_name : c.source_name ? `${c.source_name}（${c.source_id}）` : c.source_id;

export function caseRow(c, { select = false } = {}) {
  const due = c.state === "reminded" ? c.explain_due : ["dispatched", "on_site"].includes(c.state) ? c.feedback_due : null;
  const q = c.quantity;
  return el("tr", { class: c.tier, "data-case": c.id },
    el("td", { class: "sel" }, select ? el("input", { type: "checkbox", class: "pick", value: c.id, "aria-label": `select ${c.id}` }) : ""),
    el("td", {}, el("a", { href: `/cases/${c.id}` }, c.id)),
    el("td", {}, c.enterprise_name),
    el("td", {}, sourceText(c)),
    el("td", {}, ruleText(c), c.factor_name ? el("div", { class: "note" }, c.factor_name) : ""),
    el("td", {}, tierBadge(c.tier)),
    el("td", { class: "num" }, quantityText(q), el("div", { class: "note" }, q.name, q.ongoing ? `（${t("case.ongoing")}）` : "")),
    el("td", {}, stateBadge(c.state),
      c.condition === "cleared" ? el("div", { class: "note" }, t("case.condition_cleared")) : "",
      c.assignee ? el("div", { class: "note assignee" }, `${t("case.assignee")}：${c.assignee}`) : ""),
    el("td", { class: "num" }, c.count),
    el("td", { class: "num" }, fmtTime(c.last_seen)),
    el("td", { class: `num ${isOverdue(due) ? "overdue" : ""}` }, due ? fmtTime(due) : "—"),
  );
}

/* A typed China-time input that the browser refuses with the Chinese message (its own
   would be in the browser's language) while the text is no such time; empty is allowed. */
export function chinaTimeInput(input) {
  const check = () => input.setCustomValidity(!input.value.trim() || parseChinaTime(input.value) ? "" : t("time.bad"));
  input.addEventListener("input", check);
  input.addEventListener("change", check);
  return input;
}

/* The fields each action asks for; an action without any is one click. */
const ACTION_FIELDS = {
  remind: [], arrive: [], acknowledge: [],
  explain: ["note", "marking"], verify: ["outcome:confirmed,false_positive", "note"],
  dispatch: ["brigade", "kind", "due", "note"],
  report: ["outcome:violation_confirmed,not_confirmed,rectification_ordered,check_failed", "case_number", "note"],
  close: ["note"], comment: ["note"], escalate: ["note"],
};
const NOTE_REQUIRED = new Set(["explain", "comment", "escalate"]);
/* The order of the case page's buttons: the workflow's steps, then taking the case, a
   comment, an escalation. */
const ACTION_ORDER = ["remind", "explain", "verify", "dispatch", "arrive", "report", "close", "acknowledge", "comment", "escalate"];

/* One action's form: a visible label for each field. ``onCancel``: a 取消 button that calls it;
   ``brigades``: the brigades by name (id → name), to choose from when dispatching. */
export function actionForm(detail, action, done, { onCancel = null, brigades = null } = {}) {
  const c = detail.case;
  const fields = ACTION_FIELDS[action] || ["note"];
  const form = el("form", { class: fields.length ? "action" : "action one-click", id: `act-${action}`, "data-action": action });
  const id = (name) => `f-${action}-${c.id}-${name}`;
  const field = (name, label, control, hint) => el("div", { class: "field" },
    el("label", { for: id(name) }, label), control, hint ? el("span", { class: "hint" }, hint) : "");
  if (fields.length) form.append(el("h4", {}, t(`act.${action}`)));
  for (const spec of fields) {
    const [name, options] = spec.split(":");
    if (name === "note") {
      const label = t(`f.note_${action}`) !== `f.note_${action}` ? t(`f.note_${action}`) : t("f.note");
      form.append(field("note", label, el("textarea", { name: "note", id: id("note"), rows: 3, maxlength: 4000, required: NOTE_REQUIRED.has(action) })));
    } else if (name === "outcome") {
      form.append(field("outcome", t("f.outcome"), el("select", { name: "outcome", id: id("outcome") },
        ...options.split(",").map((o) => el("option", { value: o }, t(`out.${o}`))))));
    } else if (name === "brigade") {
      const known = new Map(brigades || []);
      if (c.brigade && !known.has(c.brigade)) known.set(c.brigade, c.brigade);
      form.append(field("brigade", t("f.brigade"), known.size
        ? el("select", { name: "brigade", id: id("brigade") },
          ...[...known].map(([b, label]) => el("option", { value: b, selected: b === c.brigade }, label)))
        : el("input", { name: "brigade", id: id("brigade"), value: c.brigade || "", maxlength: 64, autocomplete: "off" })));
    } else if (name === "kind") {
      form.append(field("kind", t("f.kind"), el("select", { name: "kind", id: id("kind") },
        el("option", { value: "" }, t("f.kind_default")),
        ...["on_site", "non_site_check"].map((k) => el("option", { value: k }, t(`kind.${k}`))))));
    } else if (name === "due") {
      // Typed, not datetime-local: that shows the browser's format ("12/05/2026, 08:00 AM").
      form.append(field("due", t("f.due"), chinaTimeInput(el("input", { name: "due", id: id("due"),
        pattern: TIME_PATTERN, placeholder: "2026-12-05 08:00", autocomplete: "off", class: "when" })), t("f.due_typed_hint")));
    } else if (name === "case_number") {
      form.append(field("case_number", t("f.case_number"), el("input", { name: "case_number", id: id("case_number"), maxlength: 64, autocomplete: "off" }), t("f.case_number_hint")));
    } else if (name === "marking") {
      form.append(field("marking", t("f.marking"), el("select", { name: "marking", id: id("marking") },
        ...["none", "startup", "shutdown", "fault", "maintenance", "calibration"].map((m) => el("option", { value: m }, t(`mark.${m}`))))));
    }
  }
  const error = el("span", { class: "error", role: "alert" });
  form.addEventListener("invalid", (ev) => { if (ev.target.validationMessage) error.textContent = ev.target.validationMessage; }, true);
  const submit = el("button", { type: "submit", class: action === "escalate" ? "danger" : "primary", id: fields.length ? null : `open-${action}` }, t(`act.${action}`));
  const buttons = el("div", { class: "buttons" }, submit);
  if (onCancel) buttons.append(el("button", { type: "button", class: "cancel", onclick: onCancel }, t("act.cancel")));
  form.append(buttons, error);
  const key = requestKey(); // one per form: a resend after an error is the same action
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { version: c.version, note: f.get("note") || "" };
    if (f.get("outcome")) body.outcome = f.get("outcome");
    if (f.get("brigade")) body.brigade = f.get("brigade");
    if (f.get("kind")) body.kind = f.get("kind");
    if (f.get("due")) body.due_at = parseChinaTime(f.get("due"));
    if (f.get("case_number")) body.case_number = f.get("case_number");
    if (f.get("marking") && f.get("marking") !== "none") body.refs = { marking: f.get("marking") };
    submit.disabled = true; // one tap, one action
    try {
      await api("POST", `/api/v1/cases/${c.id}/actions/${action}`, body, { "Idempotency-Key": key });
      done();
    } catch (err) {
      error.textContent = `${t("err.generic")}: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/* The case page's actions: one button per action the caller may take. An action without
   fields is done by its button (one click); the others' buttons open their one form (one open
   at a time). The workflow's next step, when it asks for something, is open already. */
export function actionPanel(detail, done, { brigades = null } = {}) {
  const actions = [...detail.actions].sort((a, b) => ACTION_ORDER.indexOf(a) - ACTION_ORDER.indexOf(b));
  if (!actions.length) return [el("p", { class: "empty" }, t("case.no_actions"))];
  const bar = el("div", { class: "action-bar" });
  const forms = [];
  const open = (name) => {
    for (const form of forms) {
      const on = form.dataset.action === name;
      form.hidden = !on;
      bar.querySelector(`#open-${form.dataset.action}`).setAttribute("aria-expanded", String(on));
    }
  };
  for (const action of actions) {
    if (!(ACTION_FIELDS[action] || ["note"]).length) {
      bar.append(actionForm(detail, action, done));
      continue;
    }
    const form = actionForm(detail, action, done, { onCancel: () => open(null), brigades });
    form.hidden = true;
    forms.push(form);
    bar.append(el("button", { type: "button", id: `open-${action}`, class: action === "escalate" ? "danger" : "",
      "aria-controls": `act-${action}`, "aria-expanded": "false", onclick: () => open(action) }, t(`act.${action}`)));
  }
  const next = actions[0]; // the workflow's next step; a comment or an escalation waits to be asked
  if (forms.length && forms[0].dataset.action === next && !["comment", "escalate"].includes(next)) open(next);
  return [bar, ...forms];
}
