// Type-ahead for a person: the requester on the agent's intake form, a colleague on the portal's watchers card
// (data-choice-name names the radio field). Without JavaScript the "Person suchen" button does the same on
// the server; here the matches replace the radio list while typing.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("fieldset.people-lookup");
  if (!box) return;
  const input = box.querySelector("input[name=q]");
  const tenant = box.querySelector("select[name=tenant]");
  const list = box.querySelector("ul.people-list");
  const status = box.querySelector(".people-status");
  let timer = null;
  let latest = 0;
  const choice = box.dataset.choiceName || "requester_id";

  const say = (text, className) => {
    status.replaceChildren();
    if (!text) return;
    const p = document.createElement("p");
    if (className) p.className = className;
    p.textContent = text;
    status.append(p);
  };

  const item = (person) => {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = choice;
    radio.value = String(person.id);
    const name = document.createElement("strong");
    name.textContent = person.name;
    label.append(radio, " ", name, ` <${person.email}> · ${person.tenant}`);
    li.append(label);
    return li;
  };

  const show = (people) => {
    // The person chosen so far stays at the top, whatever the new search finds.
    const checked = list.querySelector(`input[name=${choice}]:checked`);
    const keep = checked ? checked.closest("li") : null;
    list.replaceChildren(...(keep ? [keep] : []));
    people.filter((p) => !keep || String(p.id) !== checked.value).forEach((p) => list.append(item(p)));
  };

  const lookup = async () => {
    const text = input.value.trim();
    if (text.replace(/\s+/g, "").length < 2) {
      say(text ? box.dataset.textShort : "", "error");
      return;
    }
    const ticket = ++latest;
    const url = new URL(box.dataset.lookupUrl, window.location.href);
    url.searchParams.set("q", text);
    if (tenant && tenant.value) url.searchParams.set("tenant", tenant.value);
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      if (ticket !== latest) return; // an answer to an older keystroke
      show(data.people);
      if (!data.people.length) say(box.dataset.textNone);
      else say(data.more ? box.dataset.textMore : "", "muted");
    } catch (error) {
      if (ticket === latest) say(box.dataset.textFailed, "error");
    }
  };

  const soon = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(lookup, 200);
  };
  input.addEventListener("input", soon);
  if (tenant) tenant.addEventListener("change", lookup);
  input.addEventListener("keydown", (event) => {
    // Enter in the search box searches here instead of re-rendering the whole form.
    if (event.key === "Enter") {
      event.preventDefault();
      window.clearTimeout(timer);
      lookup();
    }
  });
});
