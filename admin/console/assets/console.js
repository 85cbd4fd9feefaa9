// scimgate web console: the only script. Every page works without it, but
// for copying a new token to the clipboard. It also opens and closes the
// confirmation dialogs on browsers that lack HTML invoker commands
// (commandfor/command), and makes the token dialog modal.
"use strict";

(function () {
  function copy(text, status) {
    function done(msg) { if (status) status.textContent = msg; }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(
        function () { done("Copied to the clipboard. Paste it where your integration keeps its secrets."); },
        function () { done("Copying was refused: select the token and copy it with your keyboard."); });
    } else {
      done("Select the token and copy it with your keyboard.");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var status = document.getElementById("copy-status");
    document.querySelectorAll("[data-copy-from]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-copy-from"));
      if (!field) return;
      button.hidden = false;
      button.addEventListener("click", function () { copy(field.value, status); });
    });
    // The seeds: "click the token to copy it".
    document.querySelectorAll("input[data-copy]").forEach(function (field) {
      field.addEventListener("click", function () { field.select(); copy(field.value, status); });
    });

    // The token shown once opens as a modal dialog: focus stays in it
    // until it is closed.
    document.querySelectorAll("dialog[data-modal][open]").forEach(function (d) {
      d.close();
      d.showModal();
    });

    // Invoker commands, for browsers without them.
    var supported = "commandForElement" in HTMLButtonElement.prototype;
    if (!supported) {
      document.addEventListener("click", function (e) {
        var button = e.target.closest("button[commandfor]");
        if (!button) return;
        var target = document.getElementById(button.getAttribute("commandfor"));
        if (!target || typeof target.showModal !== "function") return;
        var command = button.getAttribute("command");
        if (command === "show-modal") target.showModal();
        else if (command === "close") target.close();
      });
    }
  });
})();
