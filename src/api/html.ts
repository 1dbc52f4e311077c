// Text put into the HTML the api serves (the sign-in form, the runbook page): escaped, never markup.
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
