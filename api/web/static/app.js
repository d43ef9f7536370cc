// Progressive enhancement only: every page works without this file.
// Changing the sort order of a search re-runs it at once.
document.addEventListener("DOMContentLoaded", () => {
  const sort = document.getElementById("sort");
  if (sort && sort.form) {
    sort.addEventListener("change", () => sort.form.requestSubmit());
  }
});
