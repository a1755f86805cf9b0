import { api, chinaInput, el, fmtTime, refresh } from "../core.js";
import { t } from "../i18n.js";

export default async function render() {
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
}
