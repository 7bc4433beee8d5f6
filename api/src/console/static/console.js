// Expense-Wise console: progressive enhancement only. Every page works without this
// script for reading; with it, numbers and dates follow the browser's language, pages
// that are still changing (a scan, a rebuild) update themselves, files can be dropped,
// and the approval queue answers to the keyboard.
"use strict";

const languages = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];

function localize(root) {
  root.querySelectorAll("data.money").forEach((el) => {
    const amount = Number(el.getAttribute("value"));
    const currency = el.dataset.currency;
    if (!Number.isFinite(amount) || !currency) return;
    try {
      el.textContent = new Intl.NumberFormat(languages, { style: "currency", currency }).format(amount);
    } catch (_) { /* an unknown currency code keeps its plain form */ }
  });
  root.querySelectorAll("time[datetime]").forEach((el) => {
    const value = el.getAttribute("datetime");
    const day = el.classList.contains("day");
    const date = new Date(day ? value + "T00:00:00" : value);
    if (Number.isNaN(date.getTime())) return;
    const options = day ? { dateStyle: "medium" } : { dateStyle: "medium", timeStyle: "short" };
    el.textContent = new Intl.DateTimeFormat(languages, options).format(date);
    if (!day) el.title = value;
  });
}

// A page marked data-refresh is fetched again until it no longer is.
function followChanges() {
  const main = document.querySelector("main[data-refresh]");
  if (!main) return;
  setTimeout(async () => {
    try {
      const response = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelector("main");
      if (!fresh) return;
      main.innerHTML = fresh.innerHTML;
      if (!fresh.hasAttribute("data-refresh")) main.removeAttribute("data-refresh");
      enhance(main);
    } catch (_) { /* try again below */ }
    followChanges();
  }, 1000);
}

function dropzones(root) {
  root.querySelectorAll(".dropzone").forEach((zone) => {
    const input = zone.querySelector("input[type=file]");
    const chosen = zone.querySelector(".chosen");
    const show = () => { if (chosen) chosen.textContent = input.files.length ? input.files[0].name : ""; };
    input.addEventListener("change", show);
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        show();
      }
    });
  });
}

// The approval queue: j/k (or arrows) move, o or Enter opens, a approves, r rejects.
function queueKeys() {
  const table = document.querySelector("table[data-shortcuts]");
  if (!table) return;
  const rows = () => Array.from(table.querySelectorAll("tbody tr"));
  let current = 0;
  const mark = () => rows().forEach((row, i) => {
    row.classList.toggle("current", i === current);
    if (i === current) row.focus();
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    const list = rows();
    if (!list.length) return;
    const row = list[current];
    if (e.key === "j" || e.key === "ArrowDown") { current = Math.min(current + 1, list.length - 1); mark(); e.preventDefault(); }
    else if (e.key === "k" || e.key === "ArrowUp") { current = Math.max(current - 1, 0); mark(); e.preventDefault(); }
    else if (e.key === "o" || e.key === "Enter") { location.href = row.dataset.href; }
    else if (e.key === "a") { const form = row.querySelector("form.approve"); if (form) form.submit(); }
    else if (e.key === "r") { const reason = row.querySelector("form.reject input[name=reason]"); if (reason) { reason.focus(); e.preventDefault(); } }
  });
  mark();
}

function enhance(root) {
  localize(root);
  dropzones(root);
}

document.addEventListener("DOMContentLoaded", () => {
  enhance(document);
  queueKeys();
  followChanges();
});
