/* 企业风险评级: the fleet's 环保码, the highest score first; a card each, opening to its
   explanation, when it would change and its history. The centre rates again on demand. */
import { api, el, fmtTime } from "../core.js";
import { t, tf } from "../i18n.js";
import { colorBadge, ratingPanel } from "../risk.js";

const RATERS = new Set(["monitor", "supervisor", "admin"]);
const num = (v) => Number(v).toLocaleString("zh-CN", { maximumFractionDigits: 2 });

function card(r) {
  const top = [...r.contributions].sort((a, b) => b.points - a.points).slice(0, 2);
  const details = el("details", { class: `risk card risk-${r.color}`, id: `risk-${r.enterprise_id}` },
    el("summary", {},
      el("span", { class: "name" }, r.enterprise_name || r.enterprise_id), " ", colorBadge(r.color),
      el("span", { class: "score" }, tf("risk.points", { n: num(r.score) })),
      el("span", { class: "note" }, top.length ? top.map((c) => `${c.name} ${num(c.points)}`).join("；") : t("risk.nothing"))));
  details.addEventListener("toggle", async () => {
    if (!details.open || details.dataset.loaded) return;
    details.dataset.loaded = "1";
    const detail = await api("GET", `/api/v1/enterprises/${encodeURIComponent(r.enterprise_id)}/risk`);
    details.append(ratingPanel(detail.rating || r, detail.history));
  });
  return details;
}

export default async function render() {
  const role = document.body.dataset.role;
  const fleet = await api("GET", "/api/v1/risk");
  const w = fleet.weights;
  document.getElementById("risk-counts").replaceChildren(
    ...["red", "yellow", "green"].map((c) => el("span", { class: "risk-count" }, colorBadge(c), ` ${fleet.counts[c]}`)));
  document.getElementById("risk-rule").textContent = tf("risk.rule", {
    yellow: num(w.yellow_at), red: num(w.red_at), days: w.window_days,
    target: num(w.transmission_target * 100), tdays: w.transmission_days });
  document.getElementById("risk-list").replaceChildren(
    ...(fleet.ratings.length ? fleet.ratings.map(card) : [el("p", { class: "empty" }, t("risk.none"))]));
  await renderPositiveList();
  await renderDraws(role);
  const button = document.getElementById("risk-recompute");
  if (RATERS.has(role)) {
    button.hidden = false;
    button.onclick = async () => {
      const result = document.getElementById("risk-result");
      button.disabled = true;
      try {
        const done = await api("POST", "/api/v1/risk/recompute", {});
        result.className = "result ok";
        result.textContent = tf("risk.recomputed", { n: done.rated });
        await render();
      } catch (err) {
        result.className = "result error";
        result.textContent = `${t("err.generic")}：${err.message}`;
      } finally {
        button.disabled = false;
      }
    };
  }
}

/* 正面清单: the members, the changes waiting (a supervisor approves, or rejects with the
   reason) and the latest decided ones. */
function proposalCard(p, canDecide, done) {
  const note = el("input", { name: "note", maxlength: 2000, autocomplete: "off", placeholder: t("plist.note_hint"), "aria-label": t("plist.note") });
  const error = el("span", { class: "error", role: "alert" });
  const act = (approve) => async () => {
    if (!approve && !note.value.trim()) { error.textContent = t("plist.need_note"); return; }
    try {
      await api("POST", `/api/v1/positive-list/proposals/${p.id}/decide`, { approve, note: note.value.trim() });
      await done();
    } catch (err) { error.textContent = `${t("err.generic")}：${err.message}`; }
  };
  return el("article", { class: "card plist-proposal", id: `plist-${p.id}` },
    el("h4", {}, `${p.enterprise_name || p.enterprise_id} · ${p.change_name}`),
    el("p", {}, p.reason),
    el("p", { class: "note" }, tf("plist.proposed", { who: p.proposed_by === "nonsite" ? t("plist.system") : p.proposed_by, when: fmtTime(p.proposed_at) })),
    canDecide ? el("div", { class: "buttons" }, note,
      el("button", { type: "button", class: "primary", onclick: act(true) }, t("plist.approve")),
      el("button", { type: "button", onclick: act(false) }, t("plist.reject")), error) : "");
}

export async function renderPositiveList() {
  const role = document.body.dataset.role;
  const list = await api("GET", "/api/v1/positive-list");
  const canDecide = role === "supervisor";
  document.getElementById("plist-pending").replaceChildren(...(list.pending.length
    ? list.pending.map((p) => proposalCard(p, canDecide, render)) : [el("p", { class: "empty" }, t("plist.no_pending"))]));
  document.getElementById("plist-members").replaceChildren(...(list.members.length
    ? list.members.map((m) => el("li", {}, m.enterprise_name, el("span", { class: "note" }, m.since ? ` ${tf("plist.since", { when: fmtTime(m.since) })}` : ` ${t("plist.configured")}`)))
    : [el("li", { class: "empty" }, t("plist.no_members"))]));
  document.getElementById("plist-changes").replaceChildren(...list.changes.filter((c) => c.state !== "proposed").slice(0, 20).map((c) =>
    el("li", {}, `${fmtTime(c.decided_at)} ${c.enterprise_name} ${c.change_name} · ${c.state_name}（${c.decided_by}）${c.note ? `：${c.note}` : ""}`)));
}

/* 双随机抽查: a supervisor draws a period with its published seed; each draw shows its quotas,
   the enterprises drawn with their inspectors and cases, and whether it re-runs the same. */
function drawCard(d) {
  const quotas = Object.entries(d.quotas).map(([cls, q]) =>
    tf("draw.quota", { cls: t(`draw.class.${cls}`), members: q.members, quota: q.quota, drawn: q.drawn }));
  return el("article", { class: "card draw", id: `draw-${d.period}` },
    el("h4", {}, `${d.period} · ${tf("draw.seed_is", { seed: d.seed })}`, " ",
      el("span", { class: `badge ${d.verified ? "risk-green" : "risk-red"}` }, t(d.verified ? "draw.verified" : "draw.altered"))),
    el("p", { class: "note" }, quotas.join("；")),
    el("ul", {}, ...d.drawn.map((x) => el("li", {},
      x.enterprise_name || x.enterprise_id, " ", d.cases && d.cases[x.enterprise_id] ? el("a", { href: `/cases/${d.cases[x.enterprise_id]}` }, `#${d.cases[x.enterprise_id]}`) : "",
      el("span", { class: "note" }, ` ${tf("draw.inspectors", { names: x.inspectors.join("、") || "—" })}`)))),
    d.short.length ? el("p", { class: "error" }, tf("draw.short", { n: d.short.length })) : "");
}

async function renderDraws(role) {
  const draws = await api("GET", "/api/v1/draws");
  document.getElementById("draw-list").replaceChildren(...(draws.length
    ? draws.map(drawCard) : [el("p", { class: "empty" }, t("draw.none"))]));
  const form = document.getElementById("draw-form");
  if (role !== "supervisor" || !form.hidden) return;
  form.hidden = false;
  form.onsubmit = async (event) => {
    event.preventDefault();
    const result = document.getElementById("draw-result");
    try {
      const d = await api("POST", "/api/v1/draws", { period: form.period.value.trim(), seed: form.seed.value.trim() });
      result.className = "result ok";
      result.textContent = tf("draw.done", { period: d.period, n: d.drawn.length });
      await renderDraws(role);
    } catch (err) {
      result.className = "result error";
      result.textContent = err.code === "already_drawn" ? t("draw.already") : `${t("err.generic")}：${err.message}`;
    }
  };
}
