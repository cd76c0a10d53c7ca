// Buttons marked data-print open the browser's print dialog (bound here: the
// Content-Security-Policy allows no inline event handlers).
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});
