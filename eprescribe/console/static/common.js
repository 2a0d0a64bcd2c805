// Helpers shared by the console pages: page data, CSRF-protected fetch, DOM building, comboboxes.

export function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : {};
}

export function translator(messages, prefix) {
  return (key, values = {}) => {
    const template = messages[prefix + key] ?? key;
    return template.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : ""));
  };
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// The session's CSRF token travels in a header, never in the URL.
export function csrfFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("X-CSRF-Token", csrfToken());
  return fetch(url, { ...options, headers, credentials: "same-origin" });
}

export async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { status: response.status, detail: response.statusText, errors: [] };
  }
}

// Build elements with textContent only: nothing from the network is parsed as HTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

let comboCount = 0;

// An accessible combobox (WAI-ARIA 1.2 list autocomplete): type, arrow keys, Enter, Escape.
export function combobox({ input, list, search, render, pick, minLength = 2 }) {
  const prefix = `combo-${++comboCount}`;
  let items = [];
  let active = -1;
  let generation = 0;
  let emptyText = "";

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    const options = list.querySelectorAll('[role="option"]');
    options.forEach((option, i) => option.setAttribute("aria-selected", i === index ? "true" : "false"));
    active = index;
    if (index >= 0 && options[index]) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function choose(index) {
    const item = items[index];
    if (!item || render(item).disabled) return;
    const before = document.activeElement;
    pick(item);
    input.value = "";
    close();
    // Keep the focus where `pick` put it (the new line's first field), else stay in the search.
    if (document.activeElement === before || document.activeElement === document.body) input.focus();
  }

  function show(found) {
    items = found;
    list.replaceChildren();
    found.forEach((item, index) => {
      const view = render(item);
      const option = el(
        "li",
        {
          id: `${prefix}-${index}`,
          role: "option",
          "aria-selected": "false",
          "aria-disabled": view.disabled ? "true" : false,
          class: view.disabled ? "disabled" : "",
        },
        el("span", { class: "option-label", text: view.label }),
        view.detail ? el("span", { class: "option-detail", text: view.detail }) : null,
      );
      option.addEventListener("mousedown", (event) => event.preventDefault());
      option.addEventListener("click", () => choose(index));
      list.append(option);
    });
    if (!found.length && emptyText) list.append(el("li", { class: "empty", text: emptyText }));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(found.length ? 0 : -1);
  }

  const run = debounce(async () => {
    const q = input.value.trim();
    if (q.length < minLength) {
      close();
      return;
    }
    const mine = ++generation;
    try {
      const result = await search(q);
      if (mine !== generation) return;
      emptyText = result.empty || "";
      show(result.items);
    } catch {
      close();
    }
  }, 200);

  input.addEventListener("input", run);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && !list.hidden) {
      event.preventDefault();
      highlight(Math.min(active + 1, items.length - 1));
    } else if (event.key === "ArrowUp" && !list.hidden) {
      event.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (event.key === "Enter") {
      if (!list.hidden && active >= 0) {
        event.preventDefault();
        choose(active);
      } else {
        event.preventDefault();
      }
    } else if (event.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
  return { close };
}
