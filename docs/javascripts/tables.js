// Code in a table cell stays on one line (docs/stylesheets/extra.css), unless it holds spaces (a command, a list):
// that code may wrap, at its spaces only. Material's instant navigation swaps pages without a reload, hence document$.
document$.subscribe(({ body }) => {
  for (const code of body.querySelectorAll(".md-typeset td code")) {
    if (/\s/.test(code.textContent.trim())) code.classList.add("wraps-at-spaces");
  }
});
