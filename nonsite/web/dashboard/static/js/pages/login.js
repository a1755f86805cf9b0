import { api } from "../core.js";
import { t } from "../i18n.js";

export default function render() {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = document.getElementById("login-error");
    error.textContent = "";
    try {
      await api("POST", "/api/v1/session", {
        username: form.username.value.trim(), password: form.password.value,
      });
      location.href = sameSiteTarget(new URLSearchParams(location.search).get("next"));
    } catch (err) {
      error.textContent = err.status === 429 ? t("login.throttled") : t("login.failed");
    }
  });
}

/* Where to go after logging in: ?next= only within this site. Resolved as the browser would
   (it reads "/\\evil.example" or "/\t/evil.example" as "//evil.example", another host). */
function sameSiteTarget(next) {
  if (!next) return "/";
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch (err) {
    return "/";
  }
}
