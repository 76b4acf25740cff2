"""sqlmosaic plugin ``tasks``: projects and tasks; a task's assignee is an ``accounts`` user."""

from .models import Project, Task, TaskStatus
from .repositories import ProjectRepository, TaskRepository
from .services import TaskService

__version__ = "0.1.0"

__all__ = ["Project", "ProjectRepository", "Task", "TaskRepository", "TaskService", "TaskStatus"]
