// 証明書一覧: a check box in the table's head ticks or unticks every row of the page shown.
// Only an aid: without script the box stays hidden and the rows are ticked one by one; the
// selection is still taken by 選択を反映 or a bulk button, on the server.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("page-rows");
  if (!all) {
    return;
  }
  const rows = () => document.querySelectorAll("table.list tbody input[name=row]");
  all.hidden = false;
  all.addEventListener("change", () => {
    rows().forEach((box) => {
      box.checked = all.checked;
    });
  });
});
