//! The nine TPC-C tables (clause 1.3) for InnoDB, with the secondary indexes the transactions
//! need. HISTORY has no key in the specification; it gets an AUTO_INCREMENT surrogate
//! because wsrep replication wants a primary key on every table.

/// The scale of a database: the specification's cardinalities, or smaller ones for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub warehouses: u32,
    /// 100 000 in the specification.
    pub items: u32,
    /// Districts per warehouse: always 10.
    pub districts: u32,
    /// Customers per district: 3 000.
    pub customers: u32,
    /// Initial orders per district (one per customer): 3 000.
    pub orders: u32,
    /// Initial undelivered orders per district (the last ones): 900.
    pub new_orders: u32,
}

impl Scale {
    /// The specification's cardinalities for `warehouses` warehouses.
    pub fn full(warehouses: u32) -> Scale {
        Scale {
            warehouses,
            items: 100_000,
            districts: 10,
            customers: 3_000,
            orders: 3_000,
            new_orders: 900,
        }
    }

    /// A 100-times smaller database (1 000 items, 30 customers per district): the same
    /// transactions and consistency conditions, loaded in seconds. For tests and smoke runs;
    /// hot rows are hotter, so conflicts are more frequent than at full scale.
    pub fn small(warehouses: u32) -> Scale {
        Scale {
            warehouses,
            items: 1_000,
            districts: 10,
            customers: 30,
            orders: 30,
            new_orders: 9,
        }
    }

    /// Number of the first undelivered order of each district at load (2 101 at full scale).
    pub fn first_new_order(&self) -> u32 {
        self.orders - self.new_orders + 1
    }

    /// Largest customer last-name number in use (999 at full scale, fewer for small scales
    /// where customer `c` is named after `c - 1`).
    pub fn last_name_max(&self) -> u64 {
        u64::from(self.customers.min(1000)) - 1
    }

    pub fn name(&self) -> String {
        if *self == Scale::full(self.warehouses) {
            format!("{} warehouse(s), full scale", self.warehouses)
        } else {
            format!(
                "{} warehouse(s), {} items, {} customers/district",
                self.warehouses, self.items, self.customers
            )
        }
    }
}

/// `CREATE TABLE` statements, in load order.
pub const TABLES: &[&str] = &[
    "CREATE TABLE warehouse (
        w_id SMALLINT NOT NULL PRIMARY KEY, w_name VARCHAR(10), w_street_1 VARCHAR(20),
        w_street_2 VARCHAR(20), w_city VARCHAR(20), w_state CHAR(2), w_zip CHAR(9),
        w_tax DECIMAL(4,4), w_ytd DECIMAL(12,2))",
    "CREATE TABLE district (
        d_id TINYINT NOT NULL, d_w_id SMALLINT NOT NULL, d_name VARCHAR(10),
        d_street_1 VARCHAR(20), d_street_2 VARCHAR(20), d_city VARCHAR(20), d_state CHAR(2),
        d_zip CHAR(9), d_tax DECIMAL(4,4), d_ytd DECIMAL(12,2), d_next_o_id INT,
        PRIMARY KEY (d_w_id, d_id))",
    "CREATE TABLE customer (
        c_id INT NOT NULL, c_d_id TINYINT NOT NULL, c_w_id SMALLINT NOT NULL,
        c_first VARCHAR(16), c_middle CHAR(2), c_last VARCHAR(16), c_street_1 VARCHAR(20),
        c_street_2 VARCHAR(20), c_city VARCHAR(20), c_state CHAR(2), c_zip CHAR(9),
        c_phone CHAR(16), c_since DATETIME, c_credit CHAR(2), c_credit_lim DECIMAL(12,2),
        c_discount DECIMAL(4,4), c_balance DECIMAL(12,2), c_ytd_payment DECIMAL(12,2),
        c_payment_cnt INT, c_delivery_cnt INT, c_data VARCHAR(500),
        PRIMARY KEY (c_w_id, c_d_id, c_id), KEY idx_customer_name (c_w_id, c_d_id, c_last, c_first))",
    "CREATE TABLE history (
        h_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, h_c_id INT, h_c_d_id TINYINT,
        h_c_w_id SMALLINT, h_d_id TINYINT, h_w_id SMALLINT, h_date DATETIME,
        h_amount DECIMAL(6,2), h_data VARCHAR(24),
        KEY idx_history_district (h_w_id, h_d_id), KEY idx_history_customer (h_c_w_id, h_c_d_id, h_c_id))",
    "CREATE TABLE new_order (
        no_o_id INT NOT NULL, no_d_id TINYINT NOT NULL, no_w_id SMALLINT NOT NULL,
        PRIMARY KEY (no_w_id, no_d_id, no_o_id))",
    "CREATE TABLE orders (
        o_id INT NOT NULL, o_d_id TINYINT NOT NULL, o_w_id SMALLINT NOT NULL, o_c_id INT,
        o_entry_d DATETIME, o_carrier_id TINYINT NULL, o_ol_cnt TINYINT, o_all_local TINYINT,
        PRIMARY KEY (o_w_id, o_d_id, o_id), KEY idx_orders_customer (o_w_id, o_d_id, o_c_id, o_id))",
    "CREATE TABLE order_line (
        ol_o_id INT NOT NULL, ol_d_id TINYINT NOT NULL, ol_w_id SMALLINT NOT NULL,
        ol_number TINYINT NOT NULL, ol_i_id INT, ol_supply_w_id SMALLINT,
        ol_delivery_d DATETIME NULL, ol_quantity TINYINT, ol_amount DECIMAL(6,2),
        ol_dist_info CHAR(24), PRIMARY KEY (ol_w_id, ol_d_id, ol_o_id, ol_number))",
    "CREATE TABLE item (
        i_id INT NOT NULL PRIMARY KEY, i_im_id INT, i_name VARCHAR(24), i_price DECIMAL(5,2),
        i_data VARCHAR(50))",
    "CREATE TABLE stock (
        s_i_id INT NOT NULL, s_w_id SMALLINT NOT NULL, s_quantity SMALLINT,
        s_dist_01 CHAR(24), s_dist_02 CHAR(24), s_dist_03 CHAR(24), s_dist_04 CHAR(24),
        s_dist_05 CHAR(24), s_dist_06 CHAR(24), s_dist_07 CHAR(24), s_dist_08 CHAR(24),
        s_dist_09 CHAR(24), s_dist_10 CHAR(24), s_ytd DECIMAL(8,0), s_order_cnt SMALLINT,
        s_remote_cnt SMALLINT, s_data VARCHAR(50), PRIMARY KEY (s_w_id, s_i_id))",
];
