/*
 * Grades not yet confirmed by the server, kept in localStorage so a reload or a
 * crash does not lose them. Every operation re-reads storage so two tabs of one
 * expert do not overwrite each other's items.
 */

export function newKey() {
  if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
  return String(Date.now()) + "-" + String(Math.random()).slice(2);
}

export function createOutbox(storageKey) {
  const memory = []; // used when storage is full or disabled

  return {
    read() {
      try {
        const items = JSON.parse(window.localStorage.getItem(storageKey) || "[]");
        return Array.isArray(items) ? items : [];
      } catch (err) {
        return memory.slice();
      }
    },
    write(items) {
      memory.length = 0;
      memory.push(...items);
      try {
        window.localStorage.setItem(storageKey, JSON.stringify(items));
      } catch (err) {
        // Storage full or disabled: the in-memory copy still guards this tab.
      }
    },
    push(item) {
      const items = this.read();
      items.push(item);
      this.write(items);
    },
    update(item) {
      this.write(this.read().map((other) => (other.key === item.key ? item : other)));
    },
    remove(item) {
      this.write(this.read().filter((other) => other.key !== item.key));
    },
  };
}
