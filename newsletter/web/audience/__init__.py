"""Editor pages of the audience: the lists, importing a list file, and people.

The pages only read forms and show results; the work is ``newsletter.audience``'s, by the
same functions the command line calls (``subscribers import`` is ``lists.import_file``).
"""

from newsletter.web.audience import lists, manage, people

routes = [*lists.routes, *manage.routes, *people.routes]

__all__ = ["routes"]
