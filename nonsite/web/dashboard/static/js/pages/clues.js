/* 线索登记与跟踪: a clue submitted from a form (a township of its area, the monitoring centre,
   the supervisors), and the clues the caller may read, each with what became of it: merged
   into an open case or opening one, and that case's state. Times are China time. */
import { api, el, fmtTime, parseChinaTime, requestKey, timeField } from "../core.js";
import { filePicker } from "../evidence.js";
import { t, tf } from "../i18n.js";

const SOURCES = ["hotline_12345", "hotline_12369", "petition", "drone", "satellite", "voc_survey",
  "video", "township", "department", "other"];
const SUBMITTERS = new Set(["monitor", "supervisor", "township", "intake"]);
const CASE_READERS = new Set(["monitor", "supervisor", "admin"]);

function field(id, label, input, hint) {
  return el("div", { class: "field" }, el("label", { for: id }, label), input,
    hint ? el("span", { class: "hint" }, hint) : null);
}

function clueForm(enterprises, role) {
  const form = document.getElementById("clue-form");
  let key = requestKey(); // one per clue: a resend after a lost reply is the same clue
  const source = el("select", { id: "clue-source", name: "source" },
    ...SOURCES.map((s) => el("option", { value: s, selected: role === "township" && s === "township" }, t(`clue.source.${s}`))));
  const enterprise = el("select", { id: "clue-enterprise", name: "enterprise_id" },
    el("option", { value: "" }, t("clue.no_enterprise")),
    ...enterprises.map((e) => el("option", { value: e.id }, `${e.name}（${e.id}）`)));
  const description = el("textarea", { id: "clue-description", name: "description", rows: 4, maxlength: 4000, required: true });
  const address = el("input", { id: "clue-address", name: "address", maxlength: 200, autocomplete: "off" });
  const lon = el("input", { id: "clue-lon", name: "longitude", inputmode: "decimal", autocomplete: "off", placeholder: "121.397" });
  const lat = el("input", { id: "clue-lat", name: "latitude", inputmode: "decimal", autocomplete: "off", placeholder: "31.623" });
  const factor = el("input", { id: "clue-factor", name: "factor", maxlength: 16, autocomplete: "off", placeholder: "a21026" });
  const urgent = el("input", { id: "clue-urgent", name: "urgent", type: "checkbox" });
  const { input: photo, picker } = filePicker("clue-photo", "image/*,video/*");
  const submit = el("button", { type: "submit", id: "clue-submit" }, t("clue.submit"));
  form.replaceChildren(
    field("clue-source", t("clue.col.source"), source),
    timeField("clue-when", "occurred_at", t("clue.col.when")),
    field("clue-enterprise", t("clue.col.enterprise"), enterprise, t("clue.enterprise_hint")),
    field("clue-description", t("clue.col.description"), description),
    field("clue-address", t("clue.col.address"), address),
    el("div", { class: "pair" }, field("clue-lon", t("clue.lon"), lon), field("clue-lat", t("clue.lat"), lat)),
    field("clue-factor", t("clue.col.factor"), factor, t("clue.factor_hint")),
    el("div", { class: "field" }, el("span", { class: "label" }, t("clue.photo")), picker, el("span", { class: "hint" }, t("ev.file_hint"))),
    el("label", { class: "check", for: "clue-urgent" }, urgent, t("clue.urgent")),
    submit);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const result = document.getElementById("clue-result");
    const when = parseChinaTime(form.occurred_at.value);
    if (!when) { result.className = "result error"; result.textContent = t("time.bad"); return; }
    if (!description.value.trim()) { result.className = "result error"; result.textContent = t("clue.need_description"); return; }
    const number = (input) => (input.value.trim() ? Number(input.value.trim()) : null);
    const body = {
      source: source.value, occurred_at: when, description: description.value.trim(),
      enterprise_id: enterprise.value || null, address: address.value.trim(),
      longitude: number(lon), latitude: number(lat), factor: factor.value.trim() || null, urgent: urgent.checked,
    };
    submit.disabled = true;
    try {
      const clue = await api("POST", "/api/v1/clues", body, { "Idempotency-Key": key });
      let text = tf(clue.outcome === "merged" ? "clue.merged" : "clue.opened", { id: clue.id, case: clue.case_id });
      if (photo.files.length) { // the clue is recorded first: a photo that fails leaves it
        const file = new FormData();
        file.append("file", photo.files[0]);
        try {
          await api("POST", `/api/v1/clues/${clue.id}/attachments`, file);
          text += t("clue.photo_done");
        } catch (err) {
          text += tf("clue.photo_failed", { reason: err.code === "unsupported_type" ? t("ev.unsupported") : err.message });
        }
      }
      result.className = "result ok";
      result.textContent = text;
      form.reset();
      picker.reset();
      key = requestKey();
      await renderList();
    } catch (err) {
      result.className = "result error";
      result.textContent = `${t("err.generic")}：${err.message}`;
    } finally {
      submit.disabled = false;
    }
  };
  document.getElementById("clue-form-panel").hidden = false;
}

function clueCard(c, role) {
  const caseLink = CASE_READERS.has(role)
    ? el("a", { href: `/cases/${c.case_id}` }, `#${c.case_id}`) : `#${c.case_id}`;
  return el("article", { class: "clue card", id: `clue-${c.id}` },
    el("h4", {}, `${t("clue.number")} ${c.id} · ${t(`clue.source.${c.source}`)}`),
    el("p", { class: "description" }, c.description),
    el("dl", { class: "facts" },
      el("dt", {}, t("clue.col.when")), el("dd", {}, fmtTime(c.occurred_at)),
      el("dt", {}, t("clue.col.enterprise")), el("dd", {}, c.enterprise_name ? `${c.enterprise_name}（${c.enterprise_id}）` : t("clue.no_enterprise")),
      el("dt", {}, t("clue.col.area")), el("dd", {}, c.area || "—"),
      el("dt", {}, t("clue.col.outcome")), el("dd", {}, t(`clue.outcome.${c.outcome}`), " ", caseLink),
      el("dt", {}, t("clue.col.state")), el("dd", { class: "case-state" }, t(`state.${c.case_state}`)),
      el("dt", {}, t("clue.col.received")), el("dd", {}, `${fmtTime(c.received_at)} · ${c.submitted_by}`)));
}

async function renderList() {
  const role = document.body.dataset.role;
  const list = document.getElementById("clue-list");
  const clues = await api("GET", "/api/v1/clues?limit=100");
  list.replaceChildren(...(clues.length ? clues.map((c) => clueCard(c, role)) : [el("p", { class: "empty" }, t("clue.none"))]));
}

export default async function render() {
  const role = document.body.dataset.role;
  if (SUBMITTERS.has(role) && !document.getElementById("clue-source")) {
    const enterprises = await api("GET", "/api/v1/enterprises");
    clueForm(enterprises, role);
  }
  await renderList();
}
