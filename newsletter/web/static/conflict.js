// The conflict page: "take mine" and "take the current one" fill the merged text, which is
// what the form saves. Both versions stay on the page, so nothing is lost either way.
(function () {
  "use strict";
  const merged = document.getElementById("merged");
  if (!merged) return;
  const choices = document.getElementById("merge-choices");
  const mine = document.getElementById("mine");
  const theirs = document.querySelector("#theirs textarea");
  function take(source) {
    merged.value = source.value;
    merged.focus();
  }
  document.getElementById("take-mine").addEventListener("click", function () { take(mine); });
  document.getElementById("take-current").addEventListener("click", function () { take(theirs); });
  choices.hidden = false;
})();
