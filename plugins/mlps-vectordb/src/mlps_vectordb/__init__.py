"""mlps-vectordb: the vector-database load and search benchmark (``mlps vectordb datasize|datagen|run``).

Import-light on purpose: pymilvus, milvus-lite and numpy load only inside the worker modules.
"""

__version__ = "0.1.0"
