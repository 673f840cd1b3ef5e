"""The read side: every question pages, the API, ``scan --json`` and exports ask of stored
results, answered once here (DESIGN.md §2). ``scans`` holds the one definition of a host's
current scan, now or at any moment."""
