"""Signed links in emails and what answering them does: unsubscribe (`unsubscribe`) and the Net
Promoter Score question (`nps`), sharing one signing scheme."""
