// Render the `\( ... \)` and `\[ ... \]` spans that pymdownx.arithmatex (generic mode) writes, with the KaTeX
// vendored in docs/assets/katex (no CDN: the site renders offline). Material's instant navigation swaps pages
// without a reload, hence document$.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
    throwOnError: true,
  });
});
