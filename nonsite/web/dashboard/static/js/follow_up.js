/* 整改与回头看 on the case page: the rectification's rounds (ordered, reported, verified, struck
   off) with the step the caller may take now, and the case's re-checks (回头看) with a form for
   the one to be decided on site. Each form sends one request key for all its submissions. */
import { api, el, fmtTime, isOverdue, requestKey } from "./core.js";
import { t, tf } from "./i18n.js";

const STEP_ROLES = {
  order: ["supervisor", "enforcer"], report: ["enterprise", "enforcer"],
  verify: ["monitor", "supervisor", "enforcer"], close: ["supervisor"],
};
const DECIDERS = ["monitor", "supervisor", "enforcer"];

function may(roles, c) {
  const { role, brigade } = document.body.dataset;
  return roles.includes(role) && (role !== "enforcer" || c.brigade === brigade);
}

function field(id, label, input) {
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

function stepForm(c, step, fields, done) {
  const key = requestKey();
  const error = el("p", { class: "result error", id: `fu-${step}-error`, role: "alert" });
  const form = el("form", { class: "action labelled", id: `fu-${step}` },
    el("h4", {}, t(`fu.step.${step}`)), ...fields,
    el("div", { class: "buttons" }, el("button", { type: "submit" }, t(`fu.submit.${step}`))), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = {};
    for (const input of form.querySelectorAll("input, select, textarea")) {
      if (input.value !== "" && !input.disabled) body[input.name] = input.type === "number" ? Number(input.value) : input.value;
    }
    try {
      await api("POST", `/api/v1/cases/${c.id}/rectification/${step}`, body, { "Idempotency-Key": key });
      document.activeElement.blur(); // the panel is redrawn only when no field has the focus
      await done();
    } catch (err) {
      error.textContent = `${t("err.generic")}：${err.message}`;
    }
  };
  return form;
}

function roundView(r) {
  const late = r.state === "ordered" && isOverdue(r.due_at);
  return el("div", { class: `round ${late ? "late" : ""}`, id: `round-${r.id}` },
    el("div", { class: "round-head" }, el("b", {}, tf("fu.round", { n: r.round })), " ",
      el("span", { class: "badge state" }, r.state === "failed" ? t("fu.failed") : r.state_name),
      ` ${t("fu.due")} ${fmtTime(r.due_at)}`, late || r.overdue_at ? el("span", { class: "overdue" }, ` · ${t("fu.overdue")}`) : ""),
    el("div", {}, `${t("fu.requirement")}：${r.requirement}（${r.ordered_by}，${fmtTime(r.ordered_at)}）`),
    r.reported_at ? el("div", {}, `${t("fu.report")}：${r.report}（${fmtTime(r.reported_at)}）`) : "",
    r.verified_at ? el("div", {}, `${t("fu.verify")}：${t(`fu.method.${r.method}`)} · ${t(`fu.outcome.${r.outcome}`)} · ${r.verify_note}（${r.verified_by}，${fmtTime(r.verified_at)}）`) : "",
    r.closed_at ? el("div", {}, `${t("fu.closed")}：${r.closed_by}，${fmtTime(r.closed_at)}`) : "");
}

function recheckView(c, r, done) {
  const view = el("div", { class: "recheck", id: `recheck-${r.id}` },
    el("b", {}, `${t("fu.recheck")} ${fmtTime(r.due_at)}`), ` · ${r.method_name} · `,
    el("span", { class: "badge state" }, r.state_name), ` · ${r.reason_name}`,
    r.decided_at ? el("div", { class: "note" }, `${r.note}（${r.decided_by}，${fmtTime(r.decided_at)}）`) : "",
    r.state === "scheduled" && r.note ? el("div", { class: "note" }, r.note) : "");
  if (r.state === "scheduled" && may(DECIDERS, c)) {
    const key = requestKey();
    const outcome = el("select", { id: `rc-${r.id}-outcome`, name: "outcome" },
      el("option", { value: "passed" }, t("fu.outcome.passed")), el("option", { value: "failed" }, t("fu.outcome.failed")));
    const note = el("textarea", { id: `rc-${r.id}-note`, name: "note", maxlength: 4000, required: true });
    const error = el("p", { class: "result error", role: "alert" });
    const form = el("form", { class: "action labelled", id: `rc-${r.id}` },
      field(outcome.id, t("fu.outcome"), outcome), field(note.id, t("fu.finding"), note),
      el("div", { class: "buttons" }, el("button", { type: "submit" }, t("fu.submit.recheck"))), error);
    form.onsubmit = async (event) => {
      event.preventDefault();
      try {
        await api("POST", `/api/v1/rechecks/${r.id}/decide`, { outcome: outcome.value, note: note.value.trim() }, { "Idempotency-Key": key });
        document.activeElement.blur();
        await done();
      } catch (err) { error.textContent = `${t("err.generic")}：${err.message}`; }
    };
    view.append(form);
  }
  return view;
}

export async function followUp(c, done) {
  const panel = document.getElementById("follow-up");
  if (!panel || panel.contains(document.activeElement)) return; // keep a half-written form
  const data = await api("GET", `/api/v1/cases/${c.id}/follow-up`);
  const last = data.rectifications[data.rectifications.length - 1];
  const forms = [];
  const textarea = (step, name, required = true) => {
    const id = `fu-${step}-${name}`;
    return field(id, t(`fu.field.${name}`), el("textarea", { id, name, maxlength: 4000, required }));
  };
  if ((!last || last.state === "closed") && may(STEP_ROLES.order, c) && c.state !== "resolved") {
    const days = el("input", { id: "fu-order-days", name: "working_days", type: "number", min: 1, max: 365, value: 15 });
    forms.push(stepForm(c, "order", [textarea("order", "requirement"), field(days.id, t("fu.field.working_days"), days)], done));
  } else if (last && last.state === "ordered" && may(STEP_ROLES.report, c)) {
    forms.push(stepForm(c, "report", [textarea("report", "note")], done));
  } else if (last && last.state === "reported" && may(STEP_ROLES.verify, c)) {
    const method = el("select", { id: "fu-verify-method", name: "method" },
      el("option", { value: "on_site" }, t("fu.method.on_site")), el("option", { value: "off_site" }, t("fu.method.off_site")));
    const outcome = el("select", { id: "fu-verify-outcome", name: "outcome" },
      el("option", { value: "passed" }, t("fu.outcome.passed")), el("option", { value: "failed" }, t("fu.outcome.failed")));
    const outcomeField = field(outcome.id, t("fu.outcome"), outcome);
    method.onchange = () => { outcomeField.hidden = method.value === "off_site"; outcome.disabled = method.value === "off_site"; };
    forms.push(stepForm(c, "verify", [field(method.id, t("fu.field.method"), method), outcomeField, textarea("verify", "note", false)], done));
  } else if (last && last.state === "verified" && may(STEP_ROLES.close, c)) {
    forms.push(stepForm(c, "close", [textarea("close", "note", false)], done));
  }
  panel.hidden = !data.rectifications.length && !data.rechecks.length && !forms.length;
  document.getElementById("follow-up-body").replaceChildren(
    ...(data.rectifications.length ? data.rectifications.map(roundView) : [el("p", { class: "empty" }, t("fu.none"))]),
    ...forms,
    ...data.rechecks.map((r) => recheckView(c, r, done)));
}
