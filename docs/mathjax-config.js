// MathJax 2.7, as shipped by the pip package jupyter-server-mathjax (its combined TeX + HTML-CSS configuration and
// web fonts), copied into the site by tools/docs.py. pymdownx.arithmatex wraps the pages' $...$ and $$...$$ in
// \(...\) and \[...\] inside class="arithmatex"; nothing else on a page is typeset.
window.MathJax = {
  config: ["TeX-AMS-MML_HTMLorMML-full.js"],
  tex2jax: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true,
            processClass: "arithmatex", ignoreClass: ".*"},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,  // the fonts it ships
               // its fallback font is url('about:blank'), which Chromium refuses with a console error
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  "fast-preview": {disabled: true},  // its preview asks for TeX fonts that the package does not ship
  messageStyle: "none",
  showMathMenu: false,
};
