/* nonsite dashboard. Plain JavaScript modules, no build step, no CDN: each page's shell is
   rendered by the server; its module fills it from the API (/api/v1) and keeps it live through
   server-sent events. */
import { alertToggle, api, live, refresh, setPage } from "./core.js";
import { applyI18n, toggleLang } from "./i18n.js";
import renderCase from "./pages/case.js";
import renderCases from "./pages/cases.js";
import renderClues from "./pages/clues.js";
import renderEnterprise from "./pages/enterprise.js";
import renderFleet from "./pages/fleet.js";
import renderLogin from "./pages/login.js";
import renderOps from "./pages/ops.js";
import renderOutlet from "./pages/outlet.js";
import renderRisk from "./pages/risk.js";
import renderStatistics from "./pages/statistics.js";
import renderWorkOrders from "./pages/work_orders.js";

const PAGES = {
  case: renderCase, cases: renderCases, clues: renderClues, enterprise: renderEnterprise, fleet: renderFleet,
  login: renderLogin, ops: renderOps, outlet: renderOutlet, risk: renderRisk, statistics: renderStatistics, work_orders: renderWorkOrders,
};

function start() {
  applyI18n();
  const lang = document.getElementById("lang");
  if (lang) lang.onclick = () => { toggleLang(); refresh(); };
  const logout = document.getElementById("logout");
  if (logout) logout.onclick = async () => {
    document.body.dataset.leaving = "1";
    await api("DELETE", "/api/v1/session");
    location.href = "/login";
  };
  alertToggle();
  let name = document.body.dataset.page;
  if (name === "cases" && document.getElementById("case")) name = "case";
  const run = PAGES[name];
  if (!run) return;
  setPage(async () => {
    try { await run(); applyI18n(); } catch (err) { console.error(err); }
    document.body.dataset.ready = "1";
  });
  refresh();
  if (name !== "login") live();
}

// Modules run after the document is parsed.
start();
