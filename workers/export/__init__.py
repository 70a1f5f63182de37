"""Data rights: export archives, account erasure, room canvas exports, thumbnails."""
