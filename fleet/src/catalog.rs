//! The bookstore's business state: the catalogue (books with ISBNs, prices, categories), stock per
//! book, customers and payment methods. Orders move stock; restocking refills it.

use crate::rng::Rng;

/// Book categories (`book.category` on inventory metrics).
pub(crate) const CATEGORIES: [&str; 6] = [
    "fiction", "mystery", "science", "history", "children", "comics",
];
/// Warehouse locations (`warehouse.location`).
pub(crate) const LOCATIONS: [&str; 2] = ["eu-west", "us-east"];
/// Payment methods (`payment.method`) and their shares of checkouts.
pub(crate) const PAYMENT_METHODS: [(&str, f64); 4] = [
    ("card", 0.62),
    ("paypal", 0.20),
    ("apple_pay", 0.10),
    ("gift_card", 0.08),
];

const ADJECTIVES: [&str; 16] = [
    "Silent",
    "Crimson",
    "Hidden",
    "Last",
    "Forgotten",
    "Winter",
    "Golden",
    "Broken",
    "Distant",
    "Quiet",
    "Burning",
    "Paper",
    "Glass",
    "Wandering",
    "Midnight",
    "Little",
];
const NOUNS: [&str; 16] = [
    "Harbor",
    "Orchard",
    "Cartographer",
    "Lighthouse",
    "Garden",
    "Archive",
    "Comet",
    "River",
    "Kingdom",
    "Alphabet",
    "Engine",
    "Atlas",
    "Sparrow",
    "Library",
    "Tide",
    "Theorem",
];

/// Distinct books in the catalogue.
const BOOKS: usize = 240;
/// Customers; ids are `u-000000` … `u-049999`.
const CUSTOMERS: u64 = 50_000;

/// One title in the catalogue.
#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub isbn: String,
    pub title: String,
    pub category: usize,
    pub location: usize,
    pub price_cents: i64,
}

/// Catalogue and stock.
#[derive(Clone, Debug)]
pub(crate) struct Catalog {
    books: Vec<Book>,
    stock: Vec<i64>,
}

impl Catalog {
    /// A catalogue of 240 books with initial stock, drawn from `rng`.
    pub(crate) fn new(rng: &mut Rng) -> Catalog {
        let mut books = Vec::with_capacity(BOOKS);
        let mut stock = Vec::with_capacity(BOOKS);
        for n in 0..BOOKS {
            let title = format!(
                "The {} {}",
                ADJECTIVES[n % ADJECTIVES.len()],
                NOUNS[(n / ADJECTIVES.len() + n) % NOUNS.len()]
            );
            books.push(Book {
                isbn: isbn13(rng),
                title,
                category: rng.below(CATEGORIES.len() as u64) as usize,
                location: rng.below(LOCATIONS.len() as u64) as usize,
                price_cents: 599 + rng.below(40) as i64 * 100 + 99,
            });
            stock.push(rng.between(20, 200));
        }
        Catalog { books, stock }
    }

    /// A book, popular ones far more often (a skewed, Zipf-like pick).
    pub(crate) fn pick(&self, rng: &mut Rng) -> usize {
        let u = rng.f64();
        ((u * u * u) * self.books.len() as f64) as usize % self.books.len().max(1)
    }

    /// The book at `index` (clamped into range).
    pub(crate) fn book(&self, index: usize) -> &Book {
        &self.books[index.min(self.books.len().saturating_sub(1))]
    }

    /// Units in stock.
    pub(crate) fn stock(&self, index: usize) -> i64 {
        self.stock.get(index).copied().unwrap_or(0)
    }

    /// Takes `quantity` units if available.
    pub(crate) fn reserve(&mut self, index: usize, quantity: i64) -> bool {
        match self.stock.get_mut(index) {
            Some(s) if *s >= quantity => {
                *s -= quantity;
                true
            }
            _ => false,
        }
    }

    /// Puts units back (a cancelled reservation).
    pub(crate) fn release(&mut self, index: usize, quantity: i64) {
        if let Some(s) = self.stock.get_mut(index) {
            *s += quantity;
        }
    }

    /// Deliveries arrive for some low-stock books.
    pub(crate) fn restock(&mut self, rng: &mut Rng) {
        for s in &mut self.stock {
            if *s < 15 && rng.chance(0.3) {
                *s += rng.between(50, 150);
            }
        }
    }

    /// Units in stock per (category, location).
    pub(crate) fn levels(&self) -> [[i64; LOCATIONS.len()]; CATEGORIES.len()] {
        let mut out = [[0; LOCATIONS.len()]; CATEGORIES.len()];
        for (book, stock) in self.books.iter().zip(&self.stock) {
            out[book.category][book.location] += stock;
        }
        out
    }
}

/// A customer id.
pub(crate) fn customer(rng: &mut Rng) -> String {
    format!("u-{:06}", rng.below(CUSTOMERS))
}

/// A payment method, by market share.
pub(crate) fn payment_method(rng: &mut Rng) -> &'static str {
    let weights = PAYMENT_METHODS.map(|(_, w)| w);
    PAYMENT_METHODS[rng.weighted(&weights)].0
}

/// A valid ISBN-13 in the 978 range.
fn isbn13(rng: &mut Rng) -> String {
    let mut digits = [9u32, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for d in digits.iter_mut().skip(3) {
        *d = rng.below(10) as u32;
    }
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    let check = (10 - sum % 10) % 10;
    digits
        .iter()
        .chain(std::iter::once(&check))
        .map(|d| char::from(b'0' + *d as u8))
        .collect()
}

#[cfg(test)]
mod tests;
