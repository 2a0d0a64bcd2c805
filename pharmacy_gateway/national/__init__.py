"""The national protocol (QĐ 808/QĐ-BYT) as pharmacy software speaks it: read a prescription, report a sale."""
