// Host pages, progressive: every feature here is also a plain form POST without script.
// - "Scan now" queues through fetch and the progress panel polls the scan's status until it ends.
// - "Test connection" posts the form's current (unsaved) values and shows the report in place.
// Strings from the server (log lines, errors, daemon facts) are attacker-controlled: they are
// only ever put in the page as text (textContent), never as HTML. No inline script (CSP).
(() => {
  "use strict";
  const POLL_MS = 1500;
  const FINISHED = new Set(["succeeded", "failed", "errored"]);
  const JSON_HEADERS = { Accept: "application/json" };

  const field = (root, name) => root.querySelector(`[data-field="${name}"]`);

  function setState(badge, state, label) {
    badge.className = `state state-${state}`;
    badge.textContent = label;
  }

  // --- live scan progress -------------------------------------------------------------------
  function render(panel, scan) {
    panel.hidden = false;
    panel.dataset.state = scan.state;
    field(panel, "id").textContent = scan.id;
    field(panel, "link").href = scan.url;
    field(panel, "open").href = scan.url;
    setState(field(panel, "state"), scan.state, scan.state_label);
    const summary = field(panel, "summary");
    if (scan.finished) summary.textContent = `Finished ${(scan.finished_at || "").replace("T", " ").slice(0, 19)} UTC.`;
    else if (scan.started_at) summary.textContent = `Running since ${scan.started_at.slice(11, 19)} UTC.`;
    else summary.textContent = "Waiting for a worker.";
    const error = field(panel, "error");
    error.textContent = scan.error || "";
    error.hidden = !scan.error;
    const log = field(panel, "log");
    log.textContent = scan.log.length ? scan.log.join("\n") : "(no log lines yet)";
    log.scrollTop = log.scrollHeight;
    field(panel, "done").hidden = !scan.finished;
  }

  function follow(panel, url) {
    panel.dataset.statusUrl = url;
    window.posture.poll(url, {
      every: POLL_MS,
      onData: (body) => {
        render(panel, body.scan);
        return body.scan.finished;
      },
      onError: (err, retrying) => {
        field(panel, "summary").textContent = retrying
          ? `Could not read the scan's state (${err.message}); retrying…`
          : `Could not read the scan's state (${err.message}): reload the page.`;
      },
    });
  }

  const panel = document.getElementById("scan-progress");
  if (panel && panel.dataset.statusUrl && !FINISHED.has(panel.dataset.state)) follow(panel, panel.dataset.statusUrl);

  const scanForm = document.querySelector("form[data-scan-now]");
  if (scanForm && panel) {
    scanForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = scanForm.querySelector("button");
      const message = document.querySelector("[data-scan-message]");
      button.disabled = true;
      try {
        const response = await fetch(scanForm.getAttribute("action"), {
          method: "POST", body: new FormData(scanForm), headers: JSON_HEADERS, credentials: "same-origin",
        });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
        if (message) message.hidden = true;
        render(panel, body.scan);
        panel.scrollIntoView({ block: "nearest" });
        follow(panel, body.scan.status_url);
      } catch (err) {
        if (message) { message.textContent = `Scan not queued: ${err.message}`; message.hidden = false; }
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- connection test ----------------------------------------------------------------------
  const hostForm = document.querySelector("form[data-host-form]");
  const result = document.getElementById("connection-result");
  const testState = document.querySelector("[data-test-state]");

  function line(parent, tag, text, className) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    el.textContent = text;
    parent.appendChild(el);
    return el;
  }

  function showReport(report, errors) {
    result.replaceChildren();
    result.hidden = false;
    if (!report) {
      const p = line(result, "p", "");
      setState(line(p, "span", ""), "fail", "not tested");
      const messages = Object.entries(errors || {}).map(([name, list]) => `${name}: ${list.join(" ")}`);
      line(result, "p", messages.join("; ") || "The form has errors.", "error");
      return;
    }
    const head = line(result, "p", "");
    if (report.ok) {
      setState(line(head, "span", ""), "pass", "connected");
      head.append(` in ${report.seconds} s to `);
      line(head, "code", report.url);
      const dl = line(result, "dl", "", "kv");
      const facts = [
        ["Ping", "OK"], ["Docker", report.server_version || "unknown"],
        ["API version", `${report.api_version} (daemon offers ${report.server_api_version || "?"})`],
        ["OS", report.os || "unknown"],
        ["Containers, images", `${report.containers ?? "?"}, ${report.images ?? "?"}`],
      ];
      for (const [name, value] of facts) { line(dl, "dt", name); line(dl, "dd", value); }
    } else {
      setState(line(head, "span", ""), "fail", "cannot connect");
      head.append(" ");
      line(head, "span", `(${report.error_kind}, ${report.seconds} s)`, "muted");
      line(result, "p", report.error, "error");
      if (report.hint) line(result, "p", report.hint, "muted");
    }
    line(result, "p", "Tested from the web server; nothing was saved. Scans run on the workers, whose network and sockets may differ.", "hint");
  }

  if (hostForm && result) {
    hostForm.addEventListener("submit", async (event) => {
      const submitter = event.submitter;
      if (!submitter || !submitter.matches("[data-test-connection]")) return;  // Save: a normal POST
      event.preventDefault();
      const data = new FormData(hostForm);
      data.set("action", "test");
      submitter.disabled = true;
      if (testState) testState.textContent = "Testing…";
      try {
        const response = await fetch(hostForm.getAttribute("action") || window.location.href, {
          method: "POST", body: data, headers: JSON_HEADERS, credentials: "same-origin",
        });
        const body = await response.json();
        showReport(body.report, body.errors);
      } catch (err) {
        showReport(null, { test: [`could not run the test (${err.message})`] });
      } finally {
        submitter.disabled = false;
        if (testState) testState.textContent = "";
      }
    });
  }
})();
