"""The speaker process: sessions to the spines, the announcements they carry, the local API."""
