/* 告警队列: the cases the filters match, a page at a time with the total, in the API's order
   (overdue first, then 报警 before 预警, then the most recently seen) or by a chosen column;
   search by enterprise, MN, region or case number; the deadline each open case waits on; the
   whole filtered list as CSV or Excel, written by the server. */
import { api, el, fmtTime, isOverdue, parseChinaTime, refresh } from "../core.js";
import { t } from "../i18n.js";
import { caseRow } from "../widgets.js";

const PAGE = 50;
const EXPORT_MAX = 100000; // the server refuses a larger export (docs/api.md, "Limits")
const STATES = ["sensed", "reminded", "explained", "verified", "dispatched", "on_site", "reported", "closed", "resolved"];
/* What an open case without a running deadline waits for. */
const WAITS = {
  sensed: (c) => (c.tier === "alarm" ? "wait.dispatch" : "wait.remind"),
  explained: () => "wait.verify", verified: () => "wait.dispatch", reported: () => "wait.close",
};

const start = new URLSearchParams(location.search);
let enterprise = start.get("enterprise_id") || "";
let enterpriseName = "";
let sort = start.get("sort") || "";
let offset = 0;
let typing = null;
let latest = 0; // renders overlap (typing, live events): only the latest request's answer is drawn

const value = (id) => document.getElementById(id).value.trim();

/* The filters as the API's query (the list and the export take the same). */
function filters() {
  const q = new URLSearchParams();
  if (value("f-q")) q.set("q", value("f-q"));
  if (value("f-tier")) q.set("tier", value("f-tier"));
  if (value("f-state")) q.append("state", value("f-state"));
  if (value("f-rule")) q.set("rule", value("f-rule"));
  for (const [id, key] of [["f-since", "since"], ["f-until", "until"]]) {
    const when = parseChinaTime(value(id));
    if (when) q.set(key, when); // a bad time is named by rangeOk and left out
  }
  if (document.getElementById("f-open").checked) q.set("open", "true");
  if (enterprise) q.set("enterprise_id", enterprise);
  if (sort) q.set("sort", sort);
  return q;
}

/* The time range as typed China time (a datetime-local input would show the browser's
   "12/05/2026, 08:00 AM"); a time that is not one is named in Chinese, not searched. */
function rangeOk() {
  const bad = ["f-since", "f-until"].filter((id) => value(id) && !parseChinaTime(value(id)));
  document.getElementById("range-error").textContent = bad.length ? t("time.bad") : "";
  return !bad.length;
}

function again() { if (rangeOk()) { offset = 0; refresh(); } }

function dueCell(c) {
  if (c.due_at) {
    const late = isOverdue(c.due_at);
    return el("td", { class: `num due${late ? " overdue" : ""}` }, fmtTime(c.due_at),
      el("div", { class: "note" }, t(`due.${c.due_kind}`), late ? ` · ${t("wo.overdue")}` : ""));
  }
  const wait = WAITS[c.state];
  return el("td", { class: "due" }, wait ? t(wait(c)) : "—");
}

function setUrl() {
  const url = new URL(location.href);
  for (const [k, v] of [["enterprise_id", enterprise], ["sort", sort]]) {
    if (v) url.searchParams.set(k, v); else url.searchParams.delete(k);
  }
  history.replaceState(null, "", url);
}

function once() {
  const stateSel = document.getElementById("f-state");
  STATES.forEach((s) => stateSel.append(el("option", { value: s }, t(`state.${s}`))));
  ["f-tier", "f-state", "f-since", "f-until", "f-open"].forEach((id) => {
    document.getElementById(id).onchange = again;
  });
  for (const id of ["f-q", "f-rule"]) {
    const input = document.getElementById(id);
    input.oninput = () => { clearTimeout(typing); typing = setTimeout(again, 400); };
    input.onkeydown = (ev) => { if (ev.key === "Enter") { clearTimeout(typing); again(); } };
  }
  document.querySelectorAll("#cases th[data-sort]").forEach((th) => {
    th.tabIndex = 0;
    const pick = () => {
      const key = th.dataset.sort;
      sort = sort === key ? `-${key}` : key;
      setUrl(); again();
    };
    th.onclick = pick;
    th.onkeydown = (ev) => { if (ev.key === "Enter") pick(); };
  });
  document.getElementById("sort-default").onclick = () => { sort = ""; setUrl(); again(); };
  document.getElementById("page-prev").onclick = () => { offset = Math.max(0, offset - PAGE); refresh(); };
  document.getElementById("page-next").onclick = () => { offset += PAGE; refresh(); };
}

async function chips() {
  const box = document.getElementById("chips");
  if (!enterprise) { box.hidden = true; box.replaceChildren(); return; }
  if (!enterpriseName) {
    enterpriseName = await api("GET", `/api/v1/enterprises/${encodeURIComponent(enterprise)}`)
      .then((e) => e.name).catch(() => enterprise);
  }
  box.hidden = false;
  box.replaceChildren(el("span", { class: "chip", id: "chip-enterprise" },
    `${t("col.enterprise")}：${enterpriseName}`,
    el("button", {
      type: "button", "aria-label": t("cases.remove_filter"), title: t("cases.remove_filter"),
      onclick: () => { enterprise = ""; enterpriseName = ""; setUrl(); again(); },
    }, "×")));
}

function pager(total, shown) {
  const from = total ? offset + 1 : 0;
  document.getElementById("pager").textContent = t("cases.pager")
    .replace("{from}", from).replace("{to}", offset + shown).replace("{total}", total);
  document.getElementById("page-prev").disabled = offset === 0;
  document.getElementById("page-next").disabled = offset + shown >= total;
  document.querySelector(".pager-bottom").hidden = total <= PAGE;
}

function exports(total) {
  for (const format of ["csv", "xlsx"]) {
    const link = document.getElementById(`export-${format}`);
    const q = filters(); q.set("format", format);
    if (total > EXPORT_MAX || total === 0) {
      link.removeAttribute("href");
      link.classList.add("disabled");
      link.title = total ? t("cases.export_too_large") : "";
    } else {
      link.href = `/api/v1/cases/export?${q}`;
      link.classList.remove("disabled");
      link.title = "";
    }
  }
}

/* 待法制审核: the legal reviewer's work first (and what the supervisors wait on): the major
   decisions awaiting review, oldest first, each leading to its case. */
async function reviewQueue() {
  if (!["legal", "supervisor"].includes(document.body.dataset.role)) return;
  const pending = await api("GET", "/api/v1/decisions?state=pending_review");
  document.getElementById("review-queue").hidden = !pending.length;
  document.getElementById("review-list").replaceChildren(...pending.map((d) => el("div", { class: "review-item", id: `review-item-${d.id}` },
    el("a", { href: `/cases/${d.case_id}` }, `#${d.case_id}`), ` ${d.type_name}`,
    d.amount_yuan !== null ? ` ${Number(d.amount_yuan).toLocaleString("zh-CN")} ${t("dec.yuan")}` : "",
    ` · ${d.document_number} · ${d.proposed_by} ${fmtTime(d.proposed_at)}`)));
}

export default async function render() {
  await reviewQueue();
  const stateSel = document.getElementById("f-state");
  if (stateSel.options.length === 1) once();
  const mine = ++latest;
  const q = filters();
  q.set("limit", String(PAGE)); q.set("offset", String(offset));
  let page = await api("GET", `/api/v1/cases?${q}`);
  if (!page.items.length && offset > 0 && page.total > 0 && mine === latest) { // the list shrank under this page
    offset = Math.floor((page.total - 1) / PAGE) * PAGE;
    q.set("offset", String(offset));
    page = await api("GET", `/api/v1/cases?${q}`);
  }
  await chips();
  if (mine !== latest) return;
  const canBulk = document.body.dataset.role === "monitor";
  document.getElementById("bulk").hidden = !canBulk;
  const verifiable = (c) => ["sensed", "reminded", "explained"].includes(c.state);
  // A phone shows each row as a card: every cell carries its column's name, and the columns
  // marked minor are left out there.
  const heads = [...document.querySelectorAll("#cases thead th")];
  document.querySelector("#cases tbody").replaceChildren(...page.items.map((c) => {
    const tr = caseRow(c, { select: canBulk && verifiable(c) });
    tr.lastElementChild.replaceWith(dueCell(c));
    [...tr.children].forEach((td, i) => {
      td.dataset.label = heads[i] ? heads[i].textContent : "";
      if (heads[i] && heads[i].classList.contains("minor")) td.classList.add("minor");
    });
    return tr;
  }));
  document.getElementById("cases-empty").hidden = page.items.length > 0;
  document.querySelectorAll("#cases th[data-sort]").forEach((th) => {
    const key = th.dataset.sort;
    const dir = sort === key ? "ascending" : sort === `-${key}` ? "descending" : null;
    th.classList.toggle("asc", dir === "ascending");
    th.classList.toggle("desc", dir === "descending");
    if (dir) th.setAttribute("aria-sort", dir); else th.removeAttribute("aria-sort");
  });
  document.getElementById("sort-default").hidden = !sort;
  pager(page.total, page.items.length);
  exports(page.total);

  const all = document.getElementById("select-all");
  all.hidden = !canBulk;
  all.checked = false;
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
