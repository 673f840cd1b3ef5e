// Live status polling shared by the pages' progress displays (reports.js, and hosts.js for a
// scan): fetch a JSON status URL until onData(body) answers true (finished),
// retrying after an error at twice the interval, and giving up after 20 errors in a row.
// onError(err, retrying) says so on the page. Load before the page's script (both deferred).
(() => {
  "use strict";
  const HEADERS = { Accept: "application/json" };
  const MAX_FAILURES = 20;

  window.posture = window.posture || {};
  window.posture.poll = (url, { every = 1500, onData, onError }) => {
    let failures = 0;
    const tick = async () => {
      try {
        const response = await fetch(url, { headers: HEADERS, credentials: "same-origin", cache: "no-store" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const body = await response.json();
        failures = 0;
        if (!onData(body)) setTimeout(tick, every);
      } catch (err) {
        failures += 1;
        const retrying = failures < MAX_FAILURES;
        onError(err, retrying);
        if (retrying) setTimeout(tick, every * 2);
      }
    };
    tick();
  };
})();
