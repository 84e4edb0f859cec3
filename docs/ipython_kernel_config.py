# The kernel that runs the practice exercises for the documentation site (`make docs`): its own log
# lines (a note that it talks to the builder over local TCP) are kept out of the build's output.
# `make docs` copies this file into the virtual environment's etc/ipython/.
c = get_config()  # noqa: F821 (IPython's config loader defines it)
c.IPKernelApp.log_level = "ERROR"
