// Progressive enhancement only: every page works without this file.
"use strict";

// datetime-local fields hold the liaison's local time; the services take UTC. On submit the
// value is sent as an ISO 8601 moment with the browser's offset.
function toOffsetIso(value) {
  const local = new Date(value);
  if (Number.isNaN(local.getTime())) return value;
  return local.toISOString();
}

function localNow() {
  const now = new Date();
  now.setMinutes(now.getMinutes() - now.getTimezoneOffset());
  return now.toISOString().slice(0, 16);
}

document.addEventListener("DOMContentLoaded", () => {
  // The sign-out page's form to the identity provider goes at once.
  const ending = document.querySelector("form[data-auto-submit]");
  if (ending) ending.submit();

  for (const input of document.querySelectorAll("input[data-default-now]")) {
    if (!input.value) input.value = localNow();
  }
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", () => {
      for (const input of form.querySelectorAll("input[data-local-time]")) {
        if (!input.value) continue;
        const carried = document.createElement("input");
        carried.type = "hidden";
        carried.name = input.name;
        carried.value = toOffsetIso(input.value);
        input.removeAttribute("name");
        form.appendChild(carried);
      }
    });
  }

  // Signed out after the idle time, as the server does: a screen left open in an ER shows
  // nobody's record. Activity in any of the person's tabs counts (shared through
  // localStorage), so a tab in the background does not sign out someone working in another.
  const idle = Number(document.body.dataset.idleSeconds || 0) * 1000;
  const signOut = document.querySelector("form.signout");
  if (idle && signOut) {
    const KEY = "cmhl-last-activity";
    const lastActivity = () => Number(localStorage.getItem(KEY) || 0);
    const noteActivity = () => localStorage.setItem(KEY, String(Date.now()));
    noteActivity();
    for (const kind of ["keydown", "pointerdown", "scroll"]) {
      document.addEventListener(kind, noteActivity, { passive: true });
    }
    const check = () => {
      const quiet = Date.now() - lastActivity();
      if (quiet < idle) {
        setTimeout(check, idle - quiet + 1000);
        return;
      }
      const reason = document.createElement("input");
      reason.type = "hidden";
      reason.name = "reason";
      reason.value = "idle";
      signOut.appendChild(reason);
      signOut.submit();
    };
    setTimeout(check, idle);
  }

  // New referrals: the caseload asks now and then when the newest one arrived, and offers a
  // refresh when that is after the page was drawn. The answer carries a time, never a name.
  const fresh = document.getElementById("fresh");
  if (fresh && fresh.dataset.since) {
    const since = Date.parse(fresh.dataset.since);
    const every = Number(fresh.dataset.pollSeconds || 30) * 1000;
    const ask = async () => {
      try {
        const answer = await fetch("/caseload/newest", { headers: { Accept: "application/json" } });
        if (!answer.ok) return;
        const { newest } = await answer.json();
        if (newest && Date.parse(newest) > since) fresh.hidden = false;
      } catch (_) {
        // offline for a moment: the next round asks again
      }
    };
    setInterval(ask, every);
  }
});
