"""The grid service's domain: codes, the grid registry and its geometry, the classification,
incidents through the closed loop, patrols and daily reports, disputes. Pure: no I/O, no
framework; the calendar and the time come in as values."""
