#include "runner_set.hpp"

#include <cstring>
#include <new>
#include <utility>

namespace rmon::monitor {

RunnerSet::~RunnerSet() {
  for (const Slot& s : set_) destroy(s.runner);
}

// The one place runners are allocated and freed: a Runner followed by its id
// and room for its task id, in a single block.
Runner* RunnerSet::allocate(std::string_view id, std::size_t task_capacity) {
  void* block = ::operator new(sizeof(Runner) + id.size() + task_capacity);
  auto* r = ::new (block) Runner();
  r->id_len = static_cast<uint16_t>(id.size());
  r->task_cap = static_cast<uint16_t>(task_capacity);
  if (!id.empty()) std::memcpy(r->chars(), id.data(), id.size());
  return r;
}

void RunnerSet::destroy(Runner* r) {
  r->~Runner();
  ::operator delete(static_cast<void*>(r));
}

Runner* RunnerSet::emplace(const HashedId& key, std::size_t task_capacity) {
  Runner* r = allocate(key.id, task_capacity);
  try {
    set_.insert({key.hash, r});
  } catch (...) {
    destroy(r);
    throw;
  }
  return r;
}

Runner* RunnerSet::set_task(Runner* r, std::string_view task, DeadlineIndex& index) {
  if (task.size() <= r->task_cap) {
    r->write_task(task);
    return r;
  }
  Runner* moved = allocate(r->id(), task.size());
  const uint16_t cap = moved->task_cap;
  *moved = std::move(*r);  // fixed fields; the id is already in place
  moved->task_cap = cap;
  moved->write_task(task);
  index.relocate(r, moved);
  auto it = set_.find(HashedId(r->id()));
  const std::size_t hash = it->hash;
  set_.erase(it);
  destroy(r);
  try {
    set_.insert({hash, moved});
  } catch (...) {  // out of memory: the runner is lost, but nothing dangles
    index.disarm(moved);
    destroy(moved);
    throw;
  }
  return moved;
}

void RunnerSet::erase(Runner* r) {
  set_.erase(set_.find(HashedId(r->id())));
  destroy(r);
}

}  // namespace rmon::monitor
