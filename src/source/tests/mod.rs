mod files;
mod journal;
