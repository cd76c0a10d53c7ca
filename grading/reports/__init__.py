"""HR reports: assignments and due dates, the /reports/ page, exports, transcripts, reminders."""
