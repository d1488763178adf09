"""Editor pages of the audience: the lists, and importing a list file in the browser.

The pages only read forms and show results; the work is ``newsletter.audience``'s, by the
same functions the command line calls (``subscribers import`` is ``lists.import_file``).
"""

from newsletter.web.audience import lists, manage

routes = lists.routes + manage.routes

__all__ = ["routes"]
