/* 证据: the files attached to a case or a clue (photos as thumbnails, the others by name), and
   the form that uploads one from a phone's camera or files. Each file shows its kind, who
   uploaded it when, its size and the start of its SHA-256 (what a bundle's manifest lists). */
import { api, el, fmtTime } from "./core.js";
import { t, tf } from "./i18n.js";

const KINDS = ["photo", "video", "recorder", "document", "audio"];
const ACCEPT = "image/jpeg,image/png,image/heic,image/webp,video/mp4,video/quicktime,video/x-msvideo,application/pdf,audio/*";

export const fmtSize = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} ${t("ev.bytes")}`);

/* A file chooser in the page's language: the browser's own button speaks the browser's
   language ("Choose File"), so the input is hidden behind a label that opens it, and the
   chosen file's name is shown beside it. */
export function filePicker(id, accept, label = t("ev.choose")) {
  const input = el("input", { id, name: "file", type: "file", accept, class: "file-input" });
  const chosen = el("span", { class: "file-chosen", id: `${id}-chosen` }, t("ev.nothing_chosen"));
  input.addEventListener("change", () => { chosen.textContent = input.files.length ? input.files[0].name : t("ev.nothing_chosen"); });
  const picker = el("div", { class: "file-pick" }, input, el("label", { for: id, class: "button" }, label), chosen);
  picker.reset = () => { chosen.textContent = t("ev.nothing_chosen"); };
  return { input, picker };
}

export function attachmentList(items) {
  if (!items.length) return [el("p", { class: "empty" }, t("ev.none"))];
  return items.map((a) => el("figure", { class: "attachment", id: `attachment-${a.id}` },
    a.content_type.startsWith("image/") && a.content_type !== "image/heic"
      ? el("a", { href: a.url, target: "_blank", rel: "noopener" }, el("img", { src: a.url, alt: a.filename, loading: "lazy" }))
      : el("a", { href: a.url, class: "file", target: "_blank", rel: "noopener" }, `${t(`ev.kind.${a.kind}`)}：${a.filename}`),
    el("figcaption", {},
      el("div", {}, `${t(`ev.kind.${a.kind}`)} · ${a.type_name} · ${fmtSize(a.size)}`),
      el("div", { class: "meta" }, `${a.uploaded_by} · ${fmtTime(a.at)}`),
      a.note ? el("div", { class: "note" }, a.note) : "",
      el("div", { class: "digest", title: a.sha256 }, `SHA-256 ${a.sha256.slice(0, 16)}…`))));
}

/* The upload form: a file (the phone offers its camera), what it is, a note. ``path`` is
   where it goes (…/attachments); ``done`` runs after each upload. */
export function uploadForm(path, done, { idPrefix = "ev" } = {}) {
  const { input: file, picker } = filePicker(`${idPrefix}-file`, ACCEPT);
  const kind = el("select", { id: `${idPrefix}-kind`, name: "kind" },
    el("option", { value: "" }, t("ev.kind.auto")), ...KINDS.map((k) => el("option", { value: k }, t(`ev.kind.${k}`))));
  const note = el("input", { id: `${idPrefix}-note`, name: "note", maxlength: 1000, autocomplete: "off" });
  const status = el("p", { class: "result", id: `${idPrefix}-status`, role: "status", "aria-live": "polite" });
  const button = el("button", { type: "submit", id: `${idPrefix}-upload` }, t("ev.upload"));
  const form = el("form", { class: "action upload", id: `${idPrefix}-form` },
    el("div", { class: "field" }, el("span", { class: "label" }, t("ev.file")), picker, el("span", { class: "hint" }, t("ev.file_hint"))),
    el("div", { class: "field" }, el("label", { for: kind.id }, t("ev.kind")), kind),
    el("div", { class: "field" }, el("label", { for: note.id }, t("ev.note")), note),
    el("div", { class: "buttons" }, button), status);
  form.onsubmit = async (event) => {
    event.preventDefault();
    if (!file.files.length) { status.className = "result error"; status.textContent = t("ev.pick"); return; }
    const body = new FormData();
    body.append("file", file.files[0]);
    if (kind.value) body.append("kind", kind.value);
    if (note.value.trim()) body.append("note", note.value.trim());
    button.disabled = true;
    status.className = "result"; status.textContent = t("ev.uploading");
    try {
      const a = await api("POST", path, body);
      status.className = "result ok";
      status.textContent = tf("ev.uploaded", { name: a.filename });
      form.reset();
      picker.reset();
      await done(a);
    } catch (err) {
      status.className = "result error";
      status.textContent = err.code === "unsupported_type" ? t("ev.unsupported")
        : err.status === 413 ? t("ev.too_large") : `${t("err.generic")}：${err.message}`;
    } finally {
      button.disabled = false;
    }
  };
  return form;
}
