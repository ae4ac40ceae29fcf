"""Browser pages SHMS serves itself (GraphiQL, the operations dashboard) and their files.

``make assets`` installs the third-party browser files into ``static/vendor/`` from the committed
``package-lock.json``; ``static.pages`` renders the pages over them (see there).
"""
