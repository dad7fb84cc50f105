// Code in a table cell stays on one line (docs/stylesheets/extra.css). Code that holds spaces (a command, a list)
// may wrap, at its spaces only: each word is kept whole, hyphens included (`--num-training-steps`).
// Material's instant navigation swaps pages without a reload, hence document$.
document$.subscribe(({ body }) => {
  for (const code of body.querySelectorAll(".md-typeset td code")) {
    const text = code.textContent;
    if (!/\s/.test(text.trim()) || code.children.length > 0) continue;
    code.classList.add("wraps-at-spaces");
    code.replaceChildren(
      ...text.split(/(\s+)/).map((part) => {
        if (/^\s*$/.test(part)) return document.createTextNode(part);
        const word = document.createElement("span");
        word.className = "word";
        word.textContent = part;
        return word;
      }),
    );
  }
});
