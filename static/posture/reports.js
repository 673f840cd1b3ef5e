// Reports page and request form, progressive: without script every action is a link or a
// form POST, and a reload shows the latest state.
// - Rows of reports queued or running poll their status and update in place until they end:
//   state, progress, note, then the Download link and the sha256, or the failure's reason.
// - Verify posts through fetch and shows verified / tampered in its row.
// - The form's quick picks set the period in place; ticking a host chooses "Only these hosts".
// Server strings (notes, errors, problems) are only ever set as text (textContent). No inline
// script (CSP). Needs poll.js (window.posture.poll) loaded first.
(() => {
  "use strict";
  const POLL_MS = 1000;
  const JSON_HEADERS = { Accept: "application/json" };
  const field = (root, name) => root.querySelector(`[data-field="${name}"]`);

  function badge(state, label) {
    const el = document.createElement("span");
    el.className = `state state-${state}`;
    el.textContent = label;
    return el;
  }

  // --- live rows ------------------------------------------------------------------------------
  function render(row, report) {
    row.dataset.state = report.state;
    const state = field(row, "state");
    state.className = `state state-${report.state}`;
    state.textContent = report.state_label;
    const progress = field(row, "progress");
    progress.value = report.progress;
    progress.textContent = `${report.progress}%`;
    progress.hidden = report.finished;
    const note = field(row, "note");
    note.textContent = report.finished ? "" : (report.state === "queued" ? "waiting for a worker" : report.progress_note);
    const error = field(row, "error");
    error.textContent = report.error || "";
    error.hidden = !report.error;
    const sha = field(row, "sha");
    sha.textContent = report.sha256 ? `${report.sha256.slice(0, 12)}…` : "";
    sha.title = report.sha256 || "";
    sha.hidden = !report.sha256;
    field(row, "no-sha").hidden = Boolean(report.sha256);
    const download = field(row, "download");
    if (report.download_url) download.href = report.download_url;
    download.hidden = !report.download_url;
    const verify = row.querySelector("form[data-verify]");
    if (verify) verify.hidden = !report.download_url;
  }

  function follow(row) {
    window.posture.poll(row.dataset.statusUrl, {
      every: POLL_MS,
      onData: (body) => { render(row, body.report); return body.report.finished; },
      onError: (err, retrying) => {
        field(row, "note").textContent = retrying ? `could not read its state (${err.message}); retrying…`
          : `could not read its state (${err.message}): reload the page`;
      },
    });
  }

  for (const row of document.querySelectorAll("tr[data-report]")) {
    if (row.dataset.state === "queued" || row.dataset.state === "running") follow(row);
  }

  // --- verify -------------------------------------------------------------------------------
  for (const form of document.querySelectorAll("form[data-verify]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const row = form.closest("tr");
      const out = field(row, "verified");
      const button = form.querySelector("button");
      button.disabled = true;
      out.replaceChildren(document.createTextNode("verifying…"));
      try {
        const response = await fetch(form.getAttribute("action"), {
          method: "POST", body: new FormData(form), headers: JSON_HEADERS, credentials: "same-origin",
        });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
        out.replaceChildren(badge(body.ok ? "verified" : "tampered", body.label));
        if (body.problem) {
          const problem = document.createElement("span");
          problem.className = "error problem";
          problem.textContent = body.problem;
          out.appendChild(problem);
        }
      } catch (err) {
        const message = document.createElement("span");
        message.className = "error problem";
        message.textContent = `not verified: ${err.message}`;
        out.replaceChildren(message);
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- request form -------------------------------------------------------------------------
  const form = document.querySelector("form[data-report-form]");
  if (form) {
    const start = form.querySelector("input[name=start]");
    const end = form.querySelector("input[name=end]");
    for (const pick of form.querySelectorAll("a[data-days]")) {
      pick.addEventListener("click", (event) => {
        event.preventDefault();
        const last = new Date(`${form.dataset.today}T00:00:00Z`);
        const first = new Date(last.getTime() - (Number(pick.dataset.days) - 1) * 86400000);
        end.value = form.dataset.today;
        start.value = first.toISOString().slice(0, 10);
      });
    }
    const chosen = form.querySelector("input[name=scope][value=chosen]");
    for (const box of form.querySelectorAll("input[name=hosts]")) {
      box.addEventListener("change", () => { if (box.checked && chosen) chosen.checked = true; });
    }
  }
})();
