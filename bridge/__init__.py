"""faxbridge's spine: the app lifecycle, front doors, the durable queue and its runners,
the database, money and fax lines. See README.md for the flow."""
