// Copy buttons: <button data-copy="ID"> copies the value of the field ID (no inline script: CSP).
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const state = document.getElementById(button.dataset.copy + "-state");
  const say = (ok) => { if (state) state.textContent = ok ? "copied" : "select it and press Ctrl+C"; };
  field.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(() => say(true), () => say(document.execCommand("copy")));
  } else {
    say(document.execCommand("copy"));
  }
});
