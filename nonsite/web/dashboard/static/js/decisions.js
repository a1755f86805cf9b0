/* 处理决定 on the case page: the case's decisions (type, document, amount, ground, state), the
   form a supervisor records one with, and the legal reviewer's approval or rejection of a major
   one (法制审核) before it takes effect. */
import { api, el, fmtTime, requestKey } from "./core.js";
import { t } from "./i18n.js";

const KINDS = ["no_penalty", "order_correction", "fine", "seizure", "police_detention", "police_crime", "transfer"];

function field(id, label, input, hint) {
  return el("div", { class: "field" }, el("label", { for: id }, label), input, hint ? el("span", { class: "hint" }, hint) : "");
}

function decisionView(d, done) {
  const view = el("div", { class: `decision ${d.state}`, id: `decision-${d.id}` },
    el("b", {}, `${d.type_name}`), d.amount_yuan !== null ? ` ${Number(d.amount_yuan).toLocaleString("zh-CN")} ${t("dec.yuan")}` : "",
    " ", el("span", { class: "badge state" }, d.state_name), ` · ${d.document_number}`,
    d.legal_ground ? el("div", {}, `${t("dec.ground")}：${d.legal_ground}`) : "",
    d.department ? el("div", {}, `${t("dec.department")}：${d.department}`) : "",
    d.note ? el("div", { class: "note" }, d.note) : "",
    el("div", { class: "meta" }, `${d.proposed_by} · ${fmtTime(d.proposed_at)}`,
      d.reviewed_at ? ` · ${t("dec.reviewed")} ${d.reviewed_by} ${fmtTime(d.reviewed_at)}${d.review_note ? `：${d.review_note}` : ""}` : ""));
  if (d.state === "pending_review" && document.body.dataset.role === "legal") {
    const key = requestKey();
    const note = el("textarea", { id: `dec-${d.id}-note`, maxlength: 4000 });
    const error = el("p", { class: "result error", role: "alert" });
    const send = async (approve) => {
      try {
        await api("POST", `/api/v1/decisions/${d.id}/review`, { approve, note: note.value.trim() }, { "Idempotency-Key": key });
        document.activeElement.blur(); // the panel is redrawn only when no field has the focus
        await done();
      } catch (err) { error.textContent = `${t("err.generic")}：${err.message}`; }
    };
    view.append(el("form", { class: "action labelled", id: `review-${d.id}`, onsubmit: (e) => e.preventDefault() },
      field(note.id, t("dec.review_note"), note),
      el("div", { class: "buttons" },
        el("button", { type: "button", id: `approve-${d.id}`, onclick: () => send(true) }, t("dec.approve")),
        el("button", { type: "button", class: "danger", id: `reject-${d.id}`, onclick: () => send(false) }, t("dec.reject"))),
      error));
  }
  return view;
}

function recordForm(c, done) {
  const key = requestKey();
  const kind = el("select", { id: "dec-kind", name: "kind" }, ...KINDS.map((k) => el("option", { value: k }, t(`dec.kind.${k}`))));
  const amount = el("input", { id: "dec-amount", name: "amount_yuan", type: "number", min: 1, step: "any", inputmode: "decimal" });
  const ground = el("textarea", { id: "dec-ground", name: "legal_ground", maxlength: 2000 });
  const department = el("input", { id: "dec-department", name: "department", maxlength: 100 });
  const number = el("input", { id: "dec-number", name: "document_number", maxlength: 100, required: true });
  const day = el("input", { id: "dec-date", name: "decided_on", type: "date" });
  const error = el("p", { class: "result error", role: "alert" });
  const amountField = field(amount.id, t("dec.amount"), amount);
  const departmentField = field(department.id, t("dec.department"), department);
  const show = () => { amountField.hidden = kind.value !== "fine"; departmentField.hidden = kind.value !== "transfer"; };
  kind.onchange = show;
  show();
  const form = el("form", { class: "action labelled", id: "dec-form" }, el("h4", {}, t("dec.record")),
    field(kind.id, t("dec.kind"), kind), amountField, departmentField,
    field(number.id, t("dec.number"), number), field(day.id, t("dec.date"), day),
    field(ground.id, t("dec.ground"), ground, t("dec.ground_hint")),
    el("div", { class: "buttons" }, el("button", { type: "submit" }, t("dec.submit"))), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = { kind: kind.value, document_number: number.value.trim(), legal_ground: ground.value.trim() };
    if (kind.value === "fine" && amount.value) body.amount_yuan = Number(amount.value);
    if (kind.value === "transfer") body.department = department.value.trim();
    if (day.value) body.decided_on = day.value;
    try {
      await api("POST", `/api/v1/cases/${c.id}/decisions`, body, { "Idempotency-Key": key });
      document.activeElement.blur();
      await done();
    } catch (err) { error.textContent = `${t("err.generic")}：${err.message}`; }
  };
  return form;
}

export async function caseDecisions(c, done) {
  const panel = document.getElementById("decisions");
  if (!panel || panel.contains(document.activeElement)) return;
  const items = await api("GET", `/api/v1/cases/${c.id}/decisions`);
  const role = document.body.dataset.role;
  const pending = items.some((d) => d.state === "pending_review");
  const forms = role === "supervisor" && !pending ? [recordForm(c, done)] : [];
  panel.hidden = !items.length && !forms.length;
  document.getElementById("decisions-body").replaceChildren(
    ...(items.length ? items.map((d) => decisionView(d, done)) : [el("p", { class: "empty" }, t("dec.none"))]), ...forms);
}
