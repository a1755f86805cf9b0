import { api, el, refresh } from "../core.js";
import { t } from "../i18n.js";
import { caseRow } from "../widgets.js";

export default async function render() {
  const params = new URLSearchParams(location.search);
  const stateSel = document.getElementById("f-state");
  if (stateSel.options.length === 1) {
    ["sensed", "reminded", "explained", "verified", "dispatched", "on_site", "reported", "closed", "resolved"]
      .forEach((s) => stateSel.append(el("option", { value: s }, t(`state.${s}`))));
    ["f-tier", "f-state", "f-rule", "f-open"].forEach((id) => { document.getElementById(id).onchange = () => refresh(); });
  }
  const q = new URLSearchParams({ limit: "200" });
  const tier = document.getElementById("f-tier").value; if (tier) q.set("tier", tier);
  const state = stateSel.value; if (state) q.append("state", state);
  const rule = document.getElementById("f-rule").value.trim(); if (rule) q.set("rule", rule);
  if (document.getElementById("f-open").checked) q.set("open", "true");
  if (params.get("enterprise_id")) q.set("enterprise_id", params.get("enterprise_id"));
  const page = await api("GET", `/api/v1/cases?${q}`);
  const canBulk = document.body.dataset.role === "monitor";
  document.getElementById("bulk").hidden = !canBulk;
  const verifiable = (c) => ["sensed", "reminded", "explained"].includes(c.state);
  document.querySelector("#cases tbody").replaceChildren(
    ...page.items.map((c) => caseRow(c, { select: canBulk && verifiable(c) })));
  document.getElementById("cases-empty").hidden = page.items.length > 0;
  const all = document.getElementById("select-all");
  all.hidden = !canBulk;
  all.onchange = () => document.querySelectorAll("input.pick").forEach((b) => { b.checked = all.checked; });
  const bulk = async (outcome) => {
    const ids = [...document.querySelectorAll("input.pick:checked")].map((b) => Number(b.value));
    if (!ids.length) return;
    let note = "";
    if (outcome === "false_positive") {
      note = prompt(t("cases.bulk_reason")) || "";
      if (!note.trim()) return;
    }
    await api("POST", "/api/v1/cases/verify", { case_ids: ids, outcome, note });
    all.checked = false;
    refresh();
  };
  document.getElementById("bulk-confirm").onclick = () => bulk("confirmed");
  document.getElementById("bulk-false").onclick = () => bulk("false_positive");
}
